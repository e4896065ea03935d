"""The OpenMP wait policy: PASSIVE for the app (UI and camera threads), OpenMP's own for a
headless style run, never over the user's own setting, and never once torch is loaded."""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = """
import os, sys
import desktop
print(os.environ.get("OMP_WAIT_POLICY"))
if sys.argv[1] == "torch-first":
    import torch
print(desktop.use_openmp_default_wait(), os.environ.get("OMP_WAIT_POLICY"))
"""


def run(mode: str, policy: str | None = None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], env=env, check=True,
                         capture_output=True, text=True).stdout
    return out.split()


def test_the_app_waits_passively_and_a_headless_run_gets_openmps_default():
    assert run("plain") == ["PASSIVE", "True", "None"]


def test_the_users_policy_and_a_loaded_torch_are_left_alone():
    assert run("plain", "ACTIVE") == ["ACTIVE", "False", "ACTIVE"]
    assert run("torch-first") == ["PASSIVE", "False", "PASSIVE"]
