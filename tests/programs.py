"""The example programs run as a user runs them: `python examples/<script> ...` in a subprocess.

One BLAS thread each, so that a test's program does not fight the test runner for the
machine's cores; PYTHONPATH points at this checkout, so the programs import the fcnlite
under test.
"""
import importlib.util
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def example_path(script):
    return os.path.join(ROOT, "examples", script)


def program_environment():
    return dict(os.environ, PYTHONPATH=ROOT, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")


def run_example(script, args, cwd, timeout=600, **kwargs):
    """The finished process (returncode, stdout, stderr as text) of examples/<script> with args, run in cwd."""
    return subprocess.run([sys.executable, example_path(script), *args], cwd=cwd, env=program_environment(),
                          capture_output=True, text=True, timeout=timeout, **kwargs)


def load_script(path):
    """A script that is not in a package (weights/convert_*.py) imported as a module, by its path."""
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
