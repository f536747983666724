"""Screenshots of every preset's result, for looking at them as a student would (issue 12): each preset run
for real but scaled down (3 rounds of 40 iterations, at most 2 trials) into a fresh store, then the page its
sentence names opened on it in headless Chromium. Not a test (it takes minutes on a busy 2-core machine; each
preset's scaled-down run is tested in tests/test_presets.py):

    python tests/shoot_presets.py [--out artifacts/screenshots]

Prints each run's id and seconds, and the load average; exits 1 when a page shows an error."""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "screenshots")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="lth-presets-"))
    os.environ["LTH_HOME"] = str(home)

    from playwright.sync_api import sync_playwright

    import test_e2e_browser as browser_helpers
    from lth_core.cli import main as cli_main
    from lth_core.engine.presets import PRESETS
    from lth_core.runs.store import RunStore
    from test_e2e_tour import _fresh

    browser_helpers.SHOTS = args.out
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; store {home}")
    made = {}
    for name, preset in PRESETS.items():
        started = time.perf_counter()
        trials = min(2, int(preset.settings.get("trials", 1)))
        if cli_main(["run", "--store", "--quiet", "--preset", name, "--rounds", "3", "--iterations", "40", "--trials",
                     str(trials), "--name", f"{preset.title} (scaled down)"]) != 0:
            print(f"{name}: the run failed")
            return 1
        with RunStore() as store:
            made[name] = store.list_runs().id.iloc[0]  # the newest
        print(f"{name}: run {made[name]} in {time.perf_counter() - started:.0f} s")
    bad = 0
    with browser_helpers._serve(home) as url, sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=browser_helpers.CHROMIUM, headless=True, args=browser_helpers.FLAGS)
        page = chromium.new_page(viewport={"width": 1400, "height": 1200})
        for name, run_id in made.items():
            path = {"live": "live_run"}.get(PRESETS[name].page, PRESETS[name].page)
            page.goto(f"{url}/{path}?run={run_id}")
            _fresh(page)
            page.mouse.move(0, 0)
            shot = browser_helpers.shoot(page, f"preset-{name}-result")
            errors = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]').count()
            bad += bool(errors)
            print(f"{shot}{'  (shows an error)' if errors else ''}")
        chromium.close()
    print(f"load average {os.getloadavg()[0]:.1f}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
