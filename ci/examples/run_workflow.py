#!/usr/bin/env python3
"""Runs the steps of a GitHub Actions workflow job on this machine: everything but the hosted runner.

Used by ci/examples/run-locally.sh (which prepares the project folder, a Python venv and the
environment) and through it by tests/ci_example.rs. It supports what ci/examples/models.yml uses
and refuses anything else by name, so the example cannot drift from what is exercised here:

- `run:` steps: the script after `${{ }}` substitution, run as GitHub runs it
  (`bash --noprofile --norc -eo pipefail`), in the project folder, with the workflow's, job's and
  step's `env:`; `$GITHUB_OUTPUT`, `$GITHUB_ENV` and `$GITHUB_PATH` work as on GitHub;
- `if:` conditions of the forms `steps.ID.outputs.NAME == 'x'` / `!= 'x'`, `success()`, `always()`;
- `${{ env.X }}`, `${{ steps.ID.outputs.X }}`, `${{ runner.os }}`, `${{ runner.temp }}`,
  `${{ github.workspace }}`;
- `uses:` actions/checkout (the project folder stands for the checkout), actions/setup-python (the
  venv's python on PATH stands for it), actions/cache/restore and actions/cache/save: a local cache
  store (one folder per key) with GitHub's semantics: exact key, then `restore-keys` prefixes (the
  newest entry wins); `cache-hit` is `true` only for an exact match; an existing key is never
  overwritten.

Every step is recorded (name, kind, outcome, outputs, seconds) in the JSON log (--log).
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

try:
    import yaml
except ImportError:
    sys.exit("error: run_workflow.py needs PyYAML to read the workflow: pip install pyyaml")

EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


class Unsupported(Exception):
    """Something the workflow uses that this runner does not simulate."""


class Runner:
    def __init__(self, workflow, project, store, overrides, job=None):
        with open(workflow) as f:
            self.wf = yaml.safe_load(f)
        jobs = self.wf.get("jobs") or {}
        if not jobs:
            raise Unsupported(f"{workflow}: no jobs")
        self.job_name = job or next(iter(jobs))
        self.job = jobs[self.job_name]
        self.project = os.path.abspath(project)
        self.store = os.path.abspath(store)
        self.temp = tempfile.mkdtemp(prefix="runner-temp-")
        self.env = {}
        for scope in (self.wf.get("env") or {}, self.job.get("env") or {}):
            for k, v in scope.items():
                self.env[k] = "" if v is None else str(v)
        self.env.update(overrides)
        self.steps = {}
        self.paths = []
        self.log = []

    # -- expressions ---------------------------------------------------------------------------
    def value(self, expr, extra_env):
        parts = expr.split(".")
        if parts[0] == "env" and len(parts) == 2:
            return {**self.env, **extra_env}.get(parts[1], "")
        if parts[0] == "steps" and len(parts) == 4 and parts[2] == "outputs":
            return self.steps.get(parts[1], {}).get(parts[3], "")
        fixed = {"runner.os": "Linux", "runner.temp": self.temp, "github.workspace": self.project}
        if expr in fixed:
            return fixed[expr]
        raise Unsupported(f"expression `{expr}`")

    def subst(self, text, extra_env=None):
        return EXPR.sub(lambda m: self.value(m.group(1), extra_env or {}), str(text))

    def condition(self, cond):
        if cond is None:
            return True
        c = EXPR.sub(lambda m: m.group(1), str(cond)).strip()
        if c in ("success()", "always()"):
            return True
        m = re.fullmatch(r"([\w.-]+)\s*(==|!=)\s*'([^']*)'", c)
        if not m:
            raise Unsupported(f"condition `{cond}`")
        left = self.value(m.group(1), {})
        return (left == m.group(3)) == (m.group(2) == "==")

    # -- steps ---------------------------------------------------------------------------------
    def run_step(self, step, record):
        env = {k: self.subst(v) for k, v in (step.get("env") or {}).items()}
        if "run" in step:
            return self.shell(self.subst(step["run"], env), env, step, record)
        uses = step.get("uses", "")
        action = uses.split("@")[0]
        inputs = {k: self.subst(v) for k, v in (step.get("with") or {}).items()}
        if action == "actions/checkout":
            record["note"] = f"the project folder {self.project} stands for the checkout"
            return {}
        if action == "actions/setup-python":
            record["note"] = f"python on PATH stands for it: {shutil.which('python')}"
            return {}
        if action == "actions/cache/restore":
            return self.cache_restore(inputs, record)
        if action == "actions/cache/save":
            return self.cache_save(inputs, record)
        raise Unsupported(f"action `{uses}`")

    def shell(self, script, step_env, step, record):
        files = {}
        for name in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH"):
            fd, files[name] = tempfile.mkstemp(prefix=name.lower() + "-", dir=self.temp)
            os.close(fd)
        env = dict(os.environ)
        env.update(self.env)
        env.update(step_env)
        env.update(files)
        env.update({"GITHUB_WORKSPACE": self.project, "RUNNER_OS": "Linux", "RUNNER_TEMP": self.temp, "CI": "true"})
        env["PATH"] = os.pathsep.join(self.paths + [env.get("PATH", "")])
        fd, path = tempfile.mkstemp(suffix=".sh", dir=self.temp)
        with os.fdopen(fd, "w") as f:
            f.write(script)
        cwd = os.path.join(self.project, step.get("working-directory", "."))
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", path],
            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        sys.stdout.write(proc.stdout)
        sys.stdout.flush()
        record["output"] = proc.stdout
        record["exit_code"] = proc.returncode
        if proc.returncode != 0:
            raise StepFailed(f"exit code {proc.returncode}")
        self.env.update(read_kv(files["GITHUB_ENV"]))
        with open(files["GITHUB_PATH"]) as f:
            self.paths = [l.strip() for l in f if l.strip()] + self.paths
        return read_kv(files["GITHUB_OUTPUT"])

    def cache_restore(self, inputs, record):
        key, path = inputs["key"], inputs["path"]
        prefixes = [p.strip() for p in inputs.get("restore-keys", "").splitlines() if p.strip()]
        entries = sorted(os.listdir(self.store), key=lambda k: os.path.getmtime(os.path.join(self.store, k))) if os.path.isdir(self.store) else []
        matched = key if key in entries else None
        if matched is None:
            for p in prefixes:
                hits = [e for e in entries if e.startswith(p)]
                if hits:
                    matched = hits[-1]
                    break
        outputs = {"cache-primary-key": key}
        if matched is None:
            record["note"] = f"cache miss for {key}"
            return outputs
        dest = os.path.join(self.project, path)
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(os.path.join(self.store, matched, "content"), dest)
        outputs.update({"cache-hit": str(matched == key).lower(), "cache-matched-key": matched})
        record["note"] = f"restored {path} from {matched}"
        return outputs

    def cache_save(self, inputs, record):
        key, path = inputs["key"], inputs["path"]
        entry = os.path.join(self.store, key)
        if os.path.isdir(entry):
            record["note"] = f"cache entry {key} already exists; not saved (as on GitHub)"
            return {}
        src = os.path.join(self.project, path)
        if not os.path.exists(src):
            raise StepFailed(f"path {path} does not exist, nothing to save")
        tmp = entry + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(src, os.path.join(tmp, "content"))
        os.replace(tmp, entry)
        record["note"] = f"saved {path} as {key}"
        return {}

    def run(self):
        failed = None
        for i, step in enumerate(self.job.get("steps") or []):
            name = step.get("name") or step.get("uses") or f"step {i + 1}"
            record = {"name": name, "id": step.get("id"), "kind": "run" if "run" in step else step.get("uses")}
            self.log.append(record)
            if failed is not None:
                record["outcome"] = "not run"
                continue
            if not self.condition(step.get("if")):
                record["outcome"] = "skipped"
                print(f"::: {name}: skipped (if: {step['if']})", flush=True)
                continue
            print(f"::: {name}", flush=True)
            start = time.monotonic()
            try:
                outputs = self.run_step(step, record)
                record["outcome"] = "success"
            except StepFailed as e:
                outputs, failed = {}, name
                record["outcome"] = "failure"
                record["error"] = str(e)
                print(f"::: {name}: FAILED ({e})", flush=True)
            record["outputs"] = outputs
            record["seconds"] = round(time.monotonic() - start, 2)
            if step.get("id"):
                self.steps[step["id"]] = outputs
            if record.get("note"):
                print(f"    {record['note']}", flush=True)
        return failed


class StepFailed(Exception):
    """A step failed; the job stops."""


def read_kv(path):
    """NAME=value lines and NAME<<DELIM heredocs, as GitHub reads $GITHUB_OUTPUT and $GITHUB_ENV."""
    out = {}
    with open(path) as f:
        lines = f.read().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delim = line.split("<<", 1)
            body = []
            i += 1
            while i < len(lines) and lines[i] != delim:
                body.append(lines[i])
                i += 1
            out[name] = "\n".join(body)
        elif "=" in line:
            name, value = line.split("=", 1)
            out[name] = value
        i += 1
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workflow", required=True)
    ap.add_argument("--project", required=True, help="folder standing for the checked-out repository")
    ap.add_argument("--cache-store", required=True, help="folder standing for the Actions cache")
    ap.add_argument("--job", help="job to run (default: the first)")
    ap.add_argument("--log", help="write the step log here as JSON")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override a workflow env value for this local run")
    a = ap.parse_args()
    overrides = dict(s.split("=", 1) for s in a.set)
    try:
        r = Runner(a.workflow, a.project, a.cache_store, overrides, a.job)
        failed = r.run()
    except Unsupported as e:
        sys.exit(f"error: {a.workflow} uses {e}, which run_workflow.py does not simulate")
    finally:
        if "r" in locals():
            shutil.rmtree(r.temp, ignore_errors=True)
    if a.log:
        with open(a.log, "w") as f:
            json.dump({"job": r.job_name, "env": r.env, "steps": r.log}, f, indent=2)
    if failed:
        sys.exit(f"error: step `{failed}` failed; the job stopped there")
    print(f"::: job {r.job_name}: every step passed", flush=True)


if __name__ == "__main__":
    main()
