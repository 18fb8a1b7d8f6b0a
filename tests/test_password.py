"""The optional shared password: with `[textgen] password` in Streamlit's
secrets (or TEXTGEN_PASSWORD), every page shows only a password form until the session has typed
it; a wrong one is refused with a message; the right one opens the page (and the others in the
same session); the password itself is never kept in session state nor shown. Without a password
there is no gate. AppTest, on the home page and on every page."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from helpers import ROOT

PAGES = ["app.py", *sorted(path.relative_to(ROOT).as_posix() for path in (ROOT / "pages").glob("*.py"))]
# The title each page shows once open (the gate's own title is "TextGen Lab").
PAGE_TITLES = {
    "app.py": "TextGen Lab", "pages/1_Corpus.py": "Corpus", "pages/2_Train.py": "Train",
    "pages/3_Runs.py": "Runs", "pages/4_Compare.py": "Compare", "pages/5_Attention.py": "Attention",
    "pages/6_Evaluate.py": "Evaluate", "pages/7_Report.py": "Report",
}
PASSWORD = "correct horse battery staple ünïcode"
INPUT_KEY = "textgen-password-input"
# Present in any secrets so that a developer's own .streamlit/secrets.toml never decides a test.
UNRELATED = {"unrelated": {"token": "x"}}


@pytest.fixture(autouse=True)
def no_password_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEXTGEN_PASSWORD", raising=False)


def make_app(page: str, secrets: dict | None = None) -> AppTest:
    app = AppTest.from_file(str(ROOT / page), default_timeout=120)
    app.secrets = {**UNRELATED, **(secrets or {})}
    return app


def gated(app: AppTest) -> bool:
    return any(field.key == INPUT_KEY for field in app.text_input)


def passed(app: AppTest) -> bool:
    return "textgen-password-passed" in app.session_state and app.session_state["textgen-password-passed"] is True


def shown_text(app: AppTest) -> str:
    """Every value and label the page rendered, as one string."""
    return "\n".join(str(getattr(element, "value", "")) + " " + str(getattr(element, "label", ""))
                     for element in app.main)


def assert_password_not_kept(app: AppTest) -> None:
    for key, value in app.session_state.to_dict().items():
        assert PASSWORD not in repr(value), key
    assert PASSWORD not in shown_text(app)


def test_every_page_is_covered() -> None:
    assert set(PAGES) == set(PAGE_TITLES), "a page was added or renamed: add it to PAGE_TITLES"


@pytest.mark.parametrize("page", PAGES)
def test_no_password_configured_means_no_gate(page: str, home: Path) -> None:
    app = make_app(page).run()
    assert not app.exception, app.exception
    assert not gated(app)
    assert PAGE_TITLES[page] in [title.value for title in app.title]


@pytest.mark.parametrize("page", PAGES)
def test_password_gates_the_page_refuses_a_wrong_one_and_opens_on_the_right_one(page: str, home: Path) -> None:
    app = make_app(page, {"textgen": {"password": PASSWORD}}).run()
    assert not app.exception, app.exception
    assert gated(app)
    # Nothing behind the gate ran: only the gate's title, no page content, the store untouched.
    assert [title.value for title in app.title] == ["TextGen Lab"]
    assert not app.subheader and not app.dataframe and not app.get("plotly_chart")
    assert [field.key for field in app.text_input] == [INPUT_KEY]
    assert not home.exists()

    app.text_input(key=INPUT_KEY).input(PASSWORD[:-1] + "X")
    app.button[0].click().run()
    assert not app.exception, app.exception
    assert gated(app)
    assert any("Wrong password" in message.value for message in app.error)
    assert not passed(app)
    assert not home.exists()

    app.text_input(key=INPUT_KEY).input(PASSWORD)
    app.button[0].click().run()
    assert not app.exception, app.exception
    assert not gated(app)
    assert PAGE_TITLES[page] in [title.value for title in app.title]
    assert not any("Wrong password" in message.value for message in app.error)
    assert passed(app)
    assert_password_not_kept(app)

    app.run()  # the session stays open on its next run
    assert not app.exception, app.exception
    assert not gated(app)
    assert_password_not_kept(app)


def test_one_password_opens_every_page_of_the_session(home: Path) -> None:
    """Session state is shared by the pages of a session: the home page's password opens the rest."""
    app = make_app("app.py", {"textgen": {"password": PASSWORD}}).run()
    app.text_input(key=INPUT_KEY).input(PASSWORD)
    app.button[0].click().run()
    assert not gated(app)
    app.switch_page("pages/3_Runs.py").run()
    assert not app.exception, app.exception
    assert not gated(app)
    assert "Runs" in [title.value for title in app.title]


def test_a_new_session_must_type_it_again(home: Path) -> None:
    first = make_app("pages/3_Runs.py", {"textgen": {"password": PASSWORD}}).run()
    first.text_input(key=INPUT_KEY).input(PASSWORD)
    first.button[0].click().run()
    assert not gated(first)
    second = make_app("pages/3_Runs.py", {"textgen": {"password": PASSWORD}}).run()
    assert gated(second)


@pytest.mark.parametrize("typed", ["", " " + PASSWORD, PASSWORD + " ", PASSWORD.upper(), "x" * 10_000])
def test_near_misses_are_refused(typed: str, home: Path) -> None:
    app = make_app("pages/2_Train.py", {"textgen": {"password": PASSWORD}}).run()
    app.text_input(key=INPUT_KEY).input(typed)
    app.button[0].click().run()
    assert not app.exception, app.exception
    assert gated(app)
    assert any("Wrong password" in message.value for message in app.error)
    assert not passed(app)


def test_the_typed_text_is_cleared_after_a_try(home: Path) -> None:
    app = make_app("app.py", {"textgen": {"password": PASSWORD}}).run()
    app.text_input(key=INPUT_KEY).input("wrong guess")
    app.button[0].click().run()
    assert app.text_input(key=INPUT_KEY).value == ""
    assert "wrong guess" not in shown_text(app)


def test_environment_variable_is_an_alternative(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTGEN_PASSWORD", "from the environment")
    app = make_app("pages/7_Report.py").run()
    assert gated(app)
    app.text_input(key=INPUT_KEY).input("from the environment")
    app.button[0].click().run()
    assert not app.exception, app.exception
    assert not gated(app)
    assert "Report" in [title.value for title in app.title]


def test_secrets_take_precedence_over_the_environment(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTGEN_PASSWORD", "from the environment")
    app = make_app("app.py", {"textgen": {"password": PASSWORD}}).run()
    app.text_input(key=INPUT_KEY).input("from the environment")
    app.button[0].click().run()
    assert gated(app)


@pytest.mark.parametrize("bad", ["", 12345, ["a", "b"]])
def test_a_misconfigured_password_keeps_the_gate_closed(bad, home: Path) -> None:
    """A `[textgen] password` that is empty or not a string is a mistake: the app says so and
    shows nothing, rather than opening without a password."""
    app = make_app("pages/3_Runs.py", {"textgen": {"password": bad}}).run()
    assert not app.exception, app.exception
    assert any("must be a non-empty string" in message.value for message in app.error)
    assert "Runs" not in [title.value for title in app.title]
    assert not home.exists()


def test_the_secrets_file_is_git_ignored() -> None:
    patterns = [line.strip() for line in (ROOT / ".gitignore").read_text().splitlines()]
    assert any(pattern in (".streamlit/secrets.toml", "/.streamlit/secrets.toml", "secrets.toml")
               for pattern in patterns)
