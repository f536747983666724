"""What the AppTest page tests share: opening one page of the app as a deep link would."""
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TIMEOUT = 90  # seconds for one script run: the machine may be busy


def page(name: str, timeout: float = TIMEOUT, **params) -> AppTest:
    """Run app.py with ?params and switch to app_pages/<name>.py, as opening a link to that page does."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    for key, value in params.items():
        at.query_params[key] = value
    at.switch_page(f"app_pages/{name}.py")
    return at.run()
