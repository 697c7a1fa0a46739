"""Issue 7, 'Nothing unsafe is loaded': no code path can unpickle or execute what it reads.

The package source is parsed (comments and docstrings do not count) and every
call that could run code from data is refused: pickle/marshal/shelve/dill/joblib
loads, ``np.load`` without ``allow_pickle=False``, ``allow_pickle=True`` anywhere,
``torch.load``, unsafe ``yaml.load``, and ``eval`` / ``exec`` / ``compile`` /
``__import__`` / ``importlib.import_module`` of a name that is not a literal.  The scanner itself is tested on
snippets, so a check that cannot fail would be noticed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import striate

PACKAGE = Path(striate.__file__).resolve().parent
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "joblib", "cloudpickle"}
UNSAFE_BUILTINS = {"eval", "exec", "compile", "__import__"}


def _dotted(node: ast.AST) -> str:
    """'np.load' for the expression np.load; '' for anything that is not a dotted name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def unsafe_calls(source: str, filename: str = "<source>") -> list[str]:
    """'file:line: what' for every call in ``source`` that could unpickle or run code."""
    found = []
    tree = ast.parse(source, filename)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                if name.split(".")[0] in UNSAFE_MODULES:
                    found.append(f"{filename}:{node.lineno}: import of {name}")
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        head, _, last = name.rpartition(".")
        where = f"{filename}:{node.lineno}: {name}("
        allow = _keyword(node, "allow_pickle")
        if allow is not None and not (isinstance(allow, ast.Constant) and allow.value is False):
            found.append(where + "allow_pickle=... not False)")
        elif last == "load" and head in ("np", "numpy") and allow is None:
            found.append(where + ") without allow_pickle=False")
        if head.split(".")[0] in UNSAFE_MODULES and last.startswith("load") or last == "Unpickler":
            found.append(where + ")")
        if head == "torch" and last == "load":
            found.append(where + ")")
        if head == "yaml" and last in ("load", "unsafe_load", "full_load", "load_all"):
            found.append(where + ") (use yaml.safe_load)")
        if name in ("__import__", "importlib.import_module"):
            if not (node.args and isinstance(node.args[0], ast.Constant)):   # a name from data
                found.append(where + "non-constant name)")
        elif name in UNSAFE_BUILTINS or name in ("builtins.eval", "builtins.exec"):
            found.append(where + ")")
    return found


def test_package_source_never_unpickles_or_executes_data():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 50 and PACKAGE / "serialize.py" in files
    found = []
    for path in files:
        found += unsafe_calls(path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE.parent)))
    assert found == [], "unsafe loading in the package:\n" + "\n".join(found)


def test_the_scanner_finds_each_unsafe_call():
    bad = {
        "import pickle\n": "import of pickle",
        "from pickle import loads\n": "import of pickle",
        "x = pickle.load(f)\n": "pickle.load(",
        "x = pickle.loads(b)\n": "pickle.loads(",
        "x = np.load(p)\n": "np.load() without allow_pickle=False",
        "x = numpy.load(p, allow_pickle=True)\n": "allow_pickle=... not False",
        "x = np.load(p, allow_pickle=flag)\n": "allow_pickle=... not False",
        "x = torch.load(p)\n": "torch.load(",
        "x = yaml.load(t)\n": "yaml.load(",
        "x = eval(text)\n": "eval(",
        "exec(code)\n": "exec(",
        "m = importlib.import_module(name)\n": "importlib.import_module(non-constant name)",
        "m = __import__(cfg['module'])\n": "__import__(non-constant name)",
        "u = pickle.Unpickler(f)\n": "pickle.Unpickler(",
    }
    for source, what in bad.items():
        found = unsafe_calls(source, "f.py")
        assert found and what in found[0] and found[0].startswith("f.py:1: "), (source, found)


def test_the_scanner_accepts_safe_code_and_ignores_text():
    good = ('"""pickle.load(f) is what we avoid; np.load(p) too."""\n'
            "# eval(x) in a comment\n"
            "a = np.load(p, allow_pickle=False)\n"
            "model.eval()\n"
            "b = json.loads(text)\n"
            "c = yaml.safe_load(text)\n"
            "d = load_restricted_pickle(data)\n"
            "e = importlib.import_module('.backend', __name__)\n")
    assert unsafe_calls(good) == []
