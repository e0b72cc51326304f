import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("numpy", "pandas", "scipy", "sklearn", "skops", "training", "worker")


def test_the_api_process_never_imports_the_scientific_stack_or_the_worker(model_store_dir) -> None:
    # It reads which version serves from the manifest; loading and scoring belong to the workers.
    program = (
        "import json, sys\n"
        "from api import create_app\n"
        "app = create_app()\n"
        "with app.test_request_context():\n"
        "    served = app.extensions['glmq'].serving_model()\n"
        f"print(json.dumps([served.version, sorted(m for m in {HEAVY!r} if m in sys.modules)]))\n"
    )
    env = {"MODEL_STORE_DIR": str(model_store_dir), "PYTHONPATH": str(ROOT), "REDIS_URL": "redis://127.0.0.1:1/0"}
    output = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True)
    assert json.loads(output.stdout) == [1, []]
