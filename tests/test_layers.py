"""The rooms point one way: smsgenie (the front door) -> web -> appliance -> hw, nothing back up.

Checked from the source's imports - every one, including those inside
functions and under TYPE_CHECKING - as gpiozero and Flask keep their own
layering, so a shortcut through the wall shows up here and not in a review.
Also: the domain imports neither Flask nor pyserial (it runs under the
command line and the daemon alike), and no module or function grows past
what one reading can hold without saying why.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ROOMS = ("smsgenie", "web", "appliance", "hw")
#: What each room must not import (a package and everything under it).
FORBIDDEN = {
    "hw": ("appliance", "web", "smsgenie"),
    "appliance": ("web", "smsgenie", "flask", "flask_wtf", "flask_babel", "werkzeug", "waitress", "serial"),
    "web": ("hw", "smsgenie", "serial"),
    "smsgenie": (),
}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
#: A module (in its docstring) or a function (in its body) that says why it is longer carries this
#: marker with the reason.
LONG_OK = "long-by-design:"


def sources(room: str) -> list[Path]:
    return sorted((ROOT / room).rglob("*.py"))


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("room", ROOMS)
def test_no_import_points_back_up_or_through_a_wall(room):
    wrong = []
    for path in sources(room):
        for name in imported(path):
            top = name.split(".")[0]
            if top in FORBIDDEN[room]:
                wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_a_wrong_import(tmp_path):
    """The checker itself is not blind: a domain module importing the page is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from web.serve import WebServer\n    import flask\n")
    assert {"web.serve", "flask"} <= imported(bad)


@pytest.mark.parametrize("room", (*ROOMS, "benchmarks"))
def test_modules_and_functions_stay_readable(room):
    long = []
    for path in sources(room):
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        lines = text.count("\n")
        if lines > MAX_MODULE_LINES and LONG_OK not in (ast.get_docstring(tree) or ""):
            long.append(f"{path.relative_to(ROOT)}: {lines} lines")
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.end_lineno - node.lineno + 1
                if body > MAX_FUNCTION_LINES and LONG_OK not in ast.get_source_segment(text, node):
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}(): {body} lines")
    assert not long, "split these, or say why in the file (a '" + LONG_OK + "' comment):\n" + "\n".join(long)


def test_every_data_file_the_code_reads_is_in_the_wheel():
    """A file beside the code (a word list, a template, a table) ships only if pyproject's package-data names
    it: one it misses works from a checkout and fails on the box (the arm64 smoke test found one)."""
    import fnmatch
    import tomllib

    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    missing = []
    for package in ("appliance", "smsgenie", "web"):
        base = ROOT / package
        for path in base.rglob("*"):
            if path.is_dir() or path.suffix in (".py", ".pyc", ".pot") or "__pycache__" in path.parts:
                continue
            inside = path.relative_to(base).as_posix()
            if not any(fnmatch.fnmatch(inside, glob) for glob in data.get(package, [])):
                missing.append(f"{package}/{inside}")
    assert not missing, f"add to [tool.setuptools.package-data] in pyproject.toml: {missing[:10]}"
