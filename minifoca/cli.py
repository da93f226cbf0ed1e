"""The command line every entry point shares: `--key value` and `--key=value` alike, `-h/--help`
built from the config dataclass's own field comments (one source: the comment beside each field in
its class; nothing here repeats them), and an unknown option answered with the close ones (difflib).

    normalise_args(argv, flags)      `--key value` -> `--key=value`; flags take no value
    options_help(cfg)                one line per field: --name TYPE = default, and its comment
    ArgParser                        argparse for the small scripts: same help style, one-line errors
"""
from __future__ import annotations

import argparse
import ast
import difflib
import functools
import inspect
import io
import os
import re
import sys
import textwrap
import tokenize
import typing

HELP = ("-h", "--help")


def print_help(text: str) -> None:
    """Print a help text; a reader that stops early (`--help | head`) is not an error."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit


def wants_help(argv) -> bool:
    return any(a in HELP for a in argv)


def normalise_args(argv, flags=()) -> list[str]:
    """`--key value` -> `--key=value`, so both spellings work; `flags` (underscore names) take no value."""
    out, i = [], 0
    while i < len(argv):
        a, nxt = argv[i], argv[i + 1] if i + 1 < len(argv) else None
        if (a.startswith("--") and "=" not in a and a[2:].replace("-", "_") not in flags
                and nxt is not None and not nxt.startswith("--")):
            out.append(f"{a}={nxt}")
            i += 2
        else:
            out.append(a)
            i += 1
    return out


def unknown(key: str, names) -> str:
    """'unknown option --key (did you mean --a, --b?)': names it starts, then difflib's close ones."""
    names = list(dict.fromkeys(names))
    close = [n for n in names if n.startswith(key)][:3] + difflib.get_close_matches(key, names, n=3, cutoff=0.6)
    close = list(dict.fromkeys(close))[:4]
    return (f"unknown option --{key}" + (f" (did you mean {', '.join('--' + c for c in close)}?)" if close else "")
            + "; --help lists every option")


@functools.cache
def field_docs(cls) -> dict[str, str]:
    """{field: its comment} read from the class's source: the comment at the end of the field's
    line(s), else the comment lines right above it (a '# ---' section rule ends those)."""
    src = textwrap.dedent(inspect.getsource(cls))
    comments = {tok.start[0]: (tok.string.lstrip("#").strip(), tok.line.lstrip().startswith("#"))
                for tok in tokenize.generate_tokens(io.StringIO(src).readline) if tok.type == tokenize.COMMENT}
    out = {}
    for node in ast.parse(src).body[0].body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        after = [comments[n][0] for n in range(node.lineno, node.end_lineno + 1) if n in comments]
        above, n = [], node.lineno - 1
        while n in comments and comments[n][1] and not comments[n][0].startswith("---"):
            above.insert(0, comments[n][0])
            n -= 1
        out[node.target.id] = " ".join(after or above)
    return out


def fields(cls) -> dict:
    """{name: type} of the dataclass's fields (ClassVars left out)."""
    return {k: v for k, v in typing.get_type_hints(cls).items() if typing.get_origin(v) is not typing.ClassVar}


def show(v) -> str:
    """A value as it is typed on the command line."""
    if isinstance(v, bool):
        return str(v).lower()
    return ",".join(map(str, v)) if isinstance(v, tuple) else (str(v) if v != "" else '""')


def options_help(cfg, fallback=None, width: int = 110) -> list[str]:
    """One entry per field of cfg's class: `--name TYPE = default` and the field's comment (else the
    comment of the same field in `fallback`, a class whose names mean the same), then the MACROS."""
    cls = type(cfg)
    docs, spare = field_docs(cls), field_docs(fallback) if fallback else {}
    choices = getattr(cls, "CHOICES", {})
    rows = []
    for name, typ in fields(cls).items():
        kind = ("|".join(map(show, choices[name])) if name in choices else
                f"{typing.get_args(typ)[0].__name__},..." if typing.get_origin(typ) is tuple else typ.__name__)
        rows.append((f"--{name} {kind} = {show(getattr(cfg, name))}", docs.get(name) or spare.get(name, "")))
    for name, values in getattr(cls, "MACROS", {}).items():
        rows.append((f"--{name} {'|'.join(values)}", f"sets {', '.join(next(iter(values.values())))} at once, "
                                                     "each to that value's setting; a later --key=value still wins"))
    return table(rows, width)


def table(rows, width: int = 110, left: int = 40) -> list[str]:
    """Two columns, the second wrapped under itself; a first cell over `left` gets its own line."""
    rows = list(rows)
    left = min(left, max((len(a) for a, _ in rows), default=0))
    out = []
    for a, b in rows:
        body = textwrap.wrap(b, width - left - 4) or [""]
        if len(a) > left:
            out.append(f"  {a}")
            out += [" " * (left + 4) + line for line in body]
        else:
            out += [f"  {a:<{left}}  {body[0]}"] + [" " * (left + 4) + line for line in body[1:]]
    return out


class ArgParser(argparse.ArgumentParser):
    """argparse with the house style: the module docstring as the description (what it does, with
    example commands), every option's type and default in its help, and errors as one line, exit 2."""

    def __init__(self, prog: str, doc: str, **kw):
        super().__init__(prog=prog, description=doc, formatter_class=_Formatter, **kw)

    def error(self, message: str):
        m = re.match(r"unrecognized arguments: (\S+)", message)
        if m and m.group(1).startswith("--"):
            names = [s[2:] for s in self._option_string_actions if s.startswith("--")]
            message = unknown(m.group(1)[2:].split("=")[0], names)
        hint = "" if "--help" in message else f"; `{self.prog} --help` lists the options"
        print(f"error: {message}{hint}", file=sys.stderr)
        raise SystemExit(2)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def _get_help_string(self, action):
        if action.nargs == 0 or action.default is argparse.SUPPRESS:
            return action.help or ""
        kind = getattr(action.type, "__name__", "str")
        default = " ".join(map(str, action.default)) if isinstance(action.default, list) else action.default
        return f"{action.help or ''} ({kind}, default {default if default not in (None, '') else 'none'})".lstrip()


def help_text(doc: str, own, cfg, cfg_title: str, presets, presets_title: str = "presets:", fallback=None) -> str:
    """An entry point's --help: its docstring (what it does, example commands), its own options,
    every config field (options_help) and the presets with their purpose."""
    return "\n".join([doc.strip(), "", "options of this command:", *table(own), "", textwrap.fill(cfg_title, 110),
                      *options_help(cfg, fallback), "", presets_title, *table(presets)])
