"""Every command line the docs, `--help` texts and deploy files show still parses.

People copy and paste these lines. An option renamed in the code but not in a README would
otherwise be found on an operator's terminal; here it fails the build, naming the file.
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import json
import re
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from hocba.cli.main import app

ROOT = Path(__file__).parents[2]
DOCS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "deploy" / "README.md",
    ROOT / "bench" / "RESULTS.md",
]
CLI = typer.main.get_command(app)
RUNNER = CliRunner()
# The image's entrypoint is `hocba`: compose's `command:` and Kubernetes' `args:` are its
# arguments (a Kubernetes `command:` replaces the entrypoint, as the toolbox's sleep does).
CONTAINER_COMMANDS = [
    (ROOT / "docker-compose.yml", "command"),
    *((path, "args") for path in sorted((ROOT / "deploy").glob("**/*.yaml"))),
]
FENCED = re.compile(r"^```[a-z]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
INLINE = re.compile(r"`(?:\S*python3? )?((?:\S*/)?(?:hocba|bench/run\.py) [^`]+)`")
SHELL_OPERATORS = ("|", "||", "&", "&&", ";")


def _program(token: str) -> str | None:
    """`hocba` or `bench/run.py` when the token runs one of them (`.venv/bin/hocba` too)."""
    if token == "hocba" or token.endswith("/hocba"):
        return "hocba"
    if token.endswith("bench/run.py"):
        return "bench/run.py"
    return None


def _commands_in(tokens: list[str]) -> Iterator[tuple[str, list[str]]]:
    """The (program, arguments) run by one shell line, e.g. after `VAR=x` or `kubectl … --`."""
    for start, token in enumerate(tokens):
        before = tokens[start - 1] if start else ""
        in_command_position = (
            not before
            or before in (*SHELL_OPERATORS, "--")
            or re.fullmatch(r"\w+=\S*", before) is not None
            or before.endswith("python")
            or before.endswith("python3")
        )
        program = _program(token)
        if program is None or not in_command_position:
            continue
        arguments = list(
            itertools.takewhile(
                lambda t: t not in SHELL_OPERATORS and not t.startswith((">", "<", "2>")),
                tokens[start + 1 :],
            )
        )
        yield program, arguments


def _shown_commands() -> Iterator[tuple[str, str, list[str]]]:
    """(where, program, arguments) for each command in a code block or inline code."""
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        where = str(doc.relative_to(ROOT))
        for block in FENCED.findall(text):
            for line in block.replace("\\\n", " ").splitlines():
                if "hocba" in line or "bench/run.py" in line:
                    for program, arguments in _commands_in(shlex.split(line, comments=True)):
                        yield where, program, arguments
        for span in INLINE.findall(FENCED.sub("", text)):
            yield from _synopsis(where, span)
    for manifest, key in CONTAINER_COMMANDS:
        array_of_arguments = rf"^\s*{key}: (\[.*?\])"
        text = manifest.read_text(encoding="utf-8")
        for array in re.findall(array_of_arguments, text, re.DOTALL | re.MULTILINE):
            yield str(manifest.relative_to(ROOT)), "hocba", json.loads(array)
    for path, command in _all_commands(CLI, ("hocba",)):
        help_text = " ".join((command.help or "").split())
        for span in re.findall(r"(?<![\w./-])hocba(?: [^\s`]+)+", help_text):
            yield f"`{' '.join(path)} --help`", "hocba", _up_to_sentence_end(span.split()[1:])


def _up_to_sentence_end(words: list[str]) -> list[str]:
    """`hocba worker, and sign with` in running text is `hocba worker`."""
    kept = []
    for word in words:
        kept.append(word.rstrip(",."))
        if word != kept[-1]:
            break
    return kept


def _synopsis(where: str, span: str) -> Iterator[tuple[str, str, list[str]]]:
    """A synopsis like `hocba trust add|list [--json]`: one command per alternative."""
    program, *words = span.replace("[", " ").replace("]", " ").split()
    words = list(itertools.takewhile(lambda w: w not in SHELL_OPERATORS, words))
    for chosen in itertools.product(*(w.split("|") for w in words)):
        yield where, _program(program) or program, list(chosen)


def _all_commands(command: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command under COMMAND. Typer bundles its own click, so only `commands` is used."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _all_commands(sub, (*path, name))


def hocba_problems(arguments: list[str]) -> list[str]:
    """What `hocba ARGUMENTS` gets wrong: an unknown sub-command or option, a missing value.

    The CLI parses the line itself, with `--help` right after the sub-command so that nothing
    runs and no option can take `--help` for its value.
    """
    command, depth = CLI, 0
    while depth < len(arguments) and arguments[depth] in getattr(command, "commands", {}):
        command, depth = command.commands[arguments[depth]], depth + 1
    subcommands = getattr(command, "commands", {})
    if subcommands and depth < len(arguments) and not arguments[depth].startswith("-"):
        path = " ".join(["hocba", *arguments[:depth]])
        return [f"`{path}` has no sub-command {arguments[depth]!r}: {', '.join(subcommands)}"]
    result = RUNNER.invoke(app, [*arguments[:depth], "--help", *arguments[depth:]])
    if result.exit_code == 0:
        return []
    message = " ".join(result.output.translate(str.maketrans("", "", "│╭╮╰╯─")).split())
    return [f"`hocba {' '.join(arguments)}`: {message}"]


@functools.cache
def _bench_parse_args() -> Callable[[list[str]], object]:
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    parse_args: Callable[[list[str]], object] = bench.parse_args
    return parse_args


def bench_problems(arguments: list[str]) -> list[str]:
    """What `bench/run.py`'s own argument parser rejects in ARGUMENTS."""
    concrete = ["1" if re.fullmatch(r"[NBWR]", word) else word for word in arguments]
    try:
        _bench_parse_args()(concrete)
    except SystemExit as exit_:
        if exit_.code == 0:  # --help
            return []
        return [f"bench/run.py rejects {' '.join(concrete)}"]
    return []


SHOWN = list(_shown_commands())


def test_the_docs_show_commands_of_every_group() -> None:
    groups = {arguments[0] for _, program, arguments in SHOWN if program == "hocba" and arguments}
    assert {"demo", "worker", "publish", "lag", "stats", "report", "dlq", "trust"} <= groups
    assert any(program == "bench/run.py" for _, program, _ in SHOWN)
    assert {"docker-compose.yml", "deploy/kubernetes/worker.yaml"} <= {w for w, _, _ in SHOWN}


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        (["lag", "--max-lagg", "5"], "No such option: --max-lagg"),
        (["trust", "revoke", "abc"], "has no sub-command 'revoke'"),
        (["dlq", "inspect", "--reason"], "requires an argument"),
    ],
)
def test_a_wrong_command_line_is_reported(arguments: list[str], problem: str) -> None:
    assert problem in " ".join(hocba_problems(arguments))


def test_a_wrong_bench_option_is_reported() -> None:
    assert bench_problems(["--records", "N", "--rates", "R"])
    assert not bench_problems(["--records", "N", "--rate", "R"])


def test_every_shown_command_line_parses() -> None:
    problems = [
        f"{where}: {problem}"
        for where, program, arguments in SHOWN
        for problem in (
            hocba_problems(arguments) if program == "hocba" else bench_problems(arguments)
        )
    ]
    assert not problems, "\n".join(problems)
