//! A read-only index over a graph: who produces and who consumes each value, topological order,
//! initializer lookup (order preserved), and dead-node detection.
//!
//! Rewrites mutate the `GraphProto` and rebuild the index afterwards; building it is linear in the
//! graph size, far below the cost of running any model.

use std::collections::{HashMap, HashSet};

use anyhow::{bail, Result};

use super::proto::{attribute_proto::AttributeType, AttributeProto, GraphProto, NodeProto, TensorProto};

/// Indexes of a graph's values and nodes.
#[derive(Debug, Clone)]
pub struct GraphIndex {
    /// Output value name → index of the node producing it.
    pub producer: HashMap<String, usize>,
    /// Value name → indexes of the nodes consuming it (a node appears once per use).
    pub consumers: HashMap<String, Vec<usize>>,
    /// Initializer name → position in `graph.initializer` (the order is meaningful: insightface reads
    /// the swapper's `emap` as the last one).
    pub initializers: HashMap<String, usize>,
    /// Graph input names (excluding initializers listed as inputs, as old exporters did).
    pub inputs: Vec<String>,
    /// Graph output names.
    pub outputs: Vec<String>,
}

impl GraphIndex {
    /// Builds the index. Fails if two nodes produce the same value.
    pub fn new(graph: &GraphProto) -> Result<GraphIndex> {
        let mut producer = HashMap::new();
        let mut consumers: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, node) in graph.node.iter().enumerate() {
            for out in node.output.iter().filter(|o| !o.is_empty()) {
                if let Some(prev) = producer.insert(out.clone(), i) {
                    bail!(
                        "value '{out}' is produced twice (nodes '{}' and '{}')",
                        node_label(&graph.node[prev]),
                        node_label(node)
                    );
                }
            }
            for inp in node.input.iter().filter(|o| !o.is_empty()) {
                consumers.entry(inp.clone()).or_default().push(i);
            }
        }
        let initializers: HashMap<String, usize> =
            graph.initializer.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect();
        let inputs = graph.input.iter().map(|v| v.name.clone()).filter(|n| !initializers.contains_key(n)).collect();
        let outputs = graph.output.iter().map(|v| v.name.clone()).collect();
        Ok(GraphIndex { producer, consumers, initializers, inputs, outputs })
    }

    /// The initializer named `name`, if any.
    pub fn initializer<'g>(&self, graph: &'g GraphProto, name: &str) -> Option<&'g TensorProto> {
        self.initializers.get(name).map(|&i| &graph.initializer[i])
    }

    /// Nodes that consume `value`.
    pub fn consumers_of(&self, value: &str) -> &[usize] {
        self.consumers.get(value).map(Vec::as_slice).unwrap_or(&[])
    }

    /// True when `value` is a graph output.
    pub fn is_graph_output(&self, value: &str) -> bool {
        self.outputs.iter().any(|o| o == value)
    }

    /// Node indexes in an order where each node follows the producers of its inputs (Kahn's
    /// algorithm, stable with respect to the original order). Fails on a cycle, naming a node in it.
    pub fn topological_order(&self, graph: &GraphProto) -> Result<Vec<usize>> {
        let n = graph.node.len();
        let mut pending = vec![0usize; n];
        for (i, node) in graph.node.iter().enumerate() {
            pending[i] = node.input.iter().filter(|x| !x.is_empty() && self.producer.contains_key(*x)).count();
        }
        let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> =
            (0..n).filter(|&i| pending[i] == 0).map(std::cmp::Reverse).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(std::cmp::Reverse(i)) = ready.pop() {
            order.push(i);
            for out in graph.node[i].output.iter().filter(|o| !o.is_empty()) {
                for &c in self.consumers_of(out) {
                    pending[c] -= 1;
                    if pending[c] == 0 {
                        ready.push(std::cmp::Reverse(c));
                    }
                }
            }
        }
        if order.len() != n {
            let stuck = (0..n).find(|&i| pending[i] > 0).expect("some node is stuck");
            bail!("the graph has a cycle through node '{}'", node_label(&graph.node[stuck]));
        }
        Ok(order)
    }

    /// Nodes none of whose outputs reach a graph output.
    pub fn dead_nodes(&self, graph: &GraphProto) -> Vec<usize> {
        let live = self.live_nodes(graph);
        (0..graph.node.len()).filter(|i| !live.contains(i)).collect()
    }

    /// Nodes that contribute to some graph output.
    pub fn live_nodes(&self, graph: &GraphProto) -> HashSet<usize> {
        let mut live = HashSet::new();
        let mut stack: Vec<&str> = self.outputs.iter().map(String::as_str).collect();
        let mut seen: HashSet<&str> = HashSet::new();
        while let Some(v) = stack.pop() {
            if !seen.insert(v) {
                continue;
            }
            if let Some(&p) = self.producer.get(v) {
                if live.insert(p) {
                    let node = &graph.node[p];
                    stack.extend(node.input.iter().filter(|x| !x.is_empty()).map(String::as_str));
                    // Values captured by subgraphs (If/Loop bodies) keep their producers alive too.
                    for a in &node.attribute {
                        for g in a.g.iter().chain(a.graphs.iter()) {
                            stack.extend(
                                outer_values_used(g)
                                    .into_iter()
                                    .filter_map(|n| self.producer.get_key_value(&n))
                                    .map(|(k, _)| k.as_str()),
                            );
                        }
                    }
                }
            }
        }
        live
    }

    /// Checks that every consumed value exists: produced by a node, an initializer or a graph input.
    pub fn check_dangling(&self, graph: &GraphProto) -> Result<()> {
        for node in &graph.node {
            for inp in node.input.iter().filter(|x| !x.is_empty()) {
                let known = self.producer.contains_key(inp)
                    || self.initializers.contains_key(inp)
                    || graph.input.iter().any(|v| &v.name == inp);
                if !known {
                    bail!(
                        "node '{}' reads '{inp}', which no node, initializer or graph input provides",
                        node_label(node)
                    );
                }
            }
        }
        for out in &self.outputs {
            if !self.producer.contains_key(out) && !self.initializers.contains_key(out) && !self.inputs.contains(out) {
                bail!("graph output '{out}' is not produced by any node");
            }
        }
        Ok(())
    }
}

/// Names read inside a subgraph that it does not define itself (outer-scope captures).
fn outer_values_used(g: &GraphProto) -> Vec<String> {
    let mut defined: HashSet<&str> = g.input.iter().map(|v| v.name.as_str()).collect();
    defined.extend(g.initializer.iter().map(|t| t.name.as_str()));
    for n in &g.node {
        defined.extend(n.output.iter().map(String::as_str));
    }
    g.node
        .iter()
        .flat_map(|n| n.input.iter())
        .filter(|i| !i.is_empty() && !defined.contains(i.as_str()))
        .cloned()
        .collect()
}

/// A short human label for a node: its name, or `op_type(first output)` when unnamed.
pub fn node_label(node: &NodeProto) -> String {
    if node.name.is_empty() {
        format!("{}({})", node.op_type, node.output.first().map(String::as_str).unwrap_or(""))
    } else {
        node.name.clone()
    }
}

/// Attribute lookup helpers on nodes.
pub trait NodeExt {
    /// The attribute named `name`.
    fn attr(&self, name: &str) -> Option<&AttributeProto>;
    /// An INT attribute, or `default`.
    fn attr_i(&self, name: &str, default: i64) -> i64;
    /// A FLOAT attribute, or `default`.
    fn attr_f(&self, name: &str, default: f32) -> f32;
    /// An INTS attribute, if present.
    fn attr_ints(&self, name: &str) -> Option<&[i64]>;
    /// A STRING attribute, if present.
    fn attr_s(&self, name: &str) -> Option<String>;
}

impl NodeExt for NodeProto {
    fn attr(&self, name: &str) -> Option<&AttributeProto> {
        self.attribute.iter().find(|a| a.name == name)
    }
    fn attr_i(&self, name: &str, default: i64) -> i64 {
        self.attr(name).map(|a| a.i).unwrap_or(default)
    }
    fn attr_f(&self, name: &str, default: f32) -> f32 {
        self.attr(name).map(|a| a.f).unwrap_or(default)
    }
    fn attr_ints(&self, name: &str) -> Option<&[i64]> {
        self.attr(name).map(|a| a.ints.as_slice())
    }
    fn attr_s(&self, name: &str) -> Option<String> {
        self.attr(name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
    }
}

/// Attribute constructors.
pub mod attr {
    use super::*;

    /// An INT attribute.
    pub fn int(name: &str, v: i64) -> AttributeProto {
        AttributeProto { name: name.into(), r#type: AttributeType::Int as i32, i: v, ..Default::default() }
    }
    /// A FLOAT attribute.
    pub fn float(name: &str, v: f32) -> AttributeProto {
        AttributeProto { name: name.into(), r#type: AttributeType::Float as i32, f: v, ..Default::default() }
    }
    /// An INTS attribute.
    pub fn ints(name: &str, v: &[i64]) -> AttributeProto {
        AttributeProto { name: name.into(), r#type: AttributeType::Ints as i32, ints: v.to_vec(), ..Default::default() }
    }
    /// A FLOATS attribute.
    pub fn floats(name: &str, v: &[f32]) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            r#type: AttributeType::Floats as i32,
            floats: v.to_vec(),
            ..Default::default()
        }
    }
    /// A STRING attribute.
    pub fn string(name: &str, v: &str) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            r#type: AttributeType::String as i32,
            s: v.as_bytes().to_vec().into(),
            ..Default::default()
        }
    }
    /// A TENSOR attribute.
    pub fn tensor(name: &str, t: TensorProto) -> AttributeProto {
        AttributeProto { name: name.into(), r#type: AttributeType::Tensor as i32, t: Some(t), ..Default::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::builder::GraphBuilder;

    #[test]
    fn index_order_and_dead_nodes() {
        let mut b = GraphBuilder::new("g");
        let x = b.input_f32("x", &[1, 4]);
        let y = b.op("Relu", &[&x], &[]);
        let _dead = b.op("Neg", &[&x], &[]);
        let z = b.op("Sigmoid", &[&y], &[]);
        b.output_f32(&z, &[1, 4]);
        let mut m = b.build(13);
        // Shuffle to test sorting.
        m.graph_mut().node.reverse();
        let g = m.graph();
        let idx = GraphIndex::new(g).unwrap();
        let order = idx.topological_order(g).unwrap();
        let pos = |op: &str| order.iter().position(|&i| g.node[i].op_type == op).unwrap();
        assert!(pos("Relu") < pos("Sigmoid"));
        let dead: Vec<_> = idx.dead_nodes(g).into_iter().map(|i| g.node[i].op_type.clone()).collect();
        assert_eq!(dead, vec!["Neg"]);
        assert_eq!(idx.consumers_of(&x).len(), 2);
        idx.check_dangling(g).unwrap();
    }

    #[test]
    fn cycle_and_dangling_are_reported() {
        let mut b = GraphBuilder::new("g");
        let x = b.input_f32("x", &[1]);
        let a = b.op("Add", &[&x, "c"], &[]);
        let c = b.node("Relu", &[&a], &["c"], &[]);
        b.output_f32(&c[0], &[1]);
        let m = b.build(13);
        let idx = GraphIndex::new(m.graph()).unwrap();
        let e = idx.topological_order(m.graph()).unwrap_err().to_string();
        assert!(e.contains("cycle"), "{e}");

        let mut b = GraphBuilder::new("g");
        let x = b.input_f32("x", &[1]);
        let a = b.op("Add", &[&x, "nowhere"], &[]);
        b.output_f32(&a, &[1]);
        let m = b.build(13);
        let e = GraphIndex::new(m.graph()).unwrap().check_dangling(m.graph()).unwrap_err().to_string();
        assert!(e.contains("reads 'nowhere'"), "{e}");
    }
}
