"""The README and the help texts, checked against the code: every command line the README shows names a real
subcommand and real options, every `--set` example resolves on the `quick` preset, and every subcommand's help
has a purpose, help for each option and examples that parse (train examples also run with --dry-run)."""

import argparse
import re
import shlex

import pytest

from unpaired.cli import build_parser, main
from unpaired.config import preset_summaries, read_preset, resolve

from conftest import REPO

README = (REPO / "README.md").read_text()


def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}


def _commands(parser=None, prefix=()):
    """(words, parser) of every subcommand, nested ones (``data synth``) included."""
    for name, sub in _subparsers(parser or build_parser()).items():
        yield (*prefix, name), sub
        yield from _commands(sub, (*prefix, name))


def _command_of(words):
    """The longest known subcommand at the start of ``words`` and its parser."""
    known = dict(_commands())
    for n in (2, 1):
        if tuple(words[:n]) in known:
            return tuple(words[:n]), known[tuple(words[:n])]
    raise AssertionError(f"no subcommand {' '.join(words[:2])!r}")


def _readme_command_lines():
    """Each `unpaired ...` line of the README's code blocks, continuation lines joined, comments cut."""
    lines = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", README, flags=re.S):
        for line in block.splitlines():
            text = line.split("#")[0].rstrip()
            if text.startswith("unpaired "):
                lines.append(text)
            elif text.startswith(" ") and lines and text.strip().startswith(("[", "--")):
                lines[-1] += " " + text.strip()
    return lines


def test_the_readme_shows_every_subcommand():
    shown = {_command_of(line.split()[1:])[0] for line in _readme_command_lines()}
    leaves = {words for words, sub in _commands() if not _subparsers(sub)}
    assert leaves <= shown, f"subcommands the README's command list leaves out: {sorted(leaves - shown)}"


@pytest.mark.parametrize("line", _readme_command_lines(), ids=lambda line: " ".join(line.split()[:3]))
def test_readme_command_line_names_real_options(line, capsys):
    words, sub = _command_of(line.split()[1:])
    options = {s for a in sub._actions for s in a.option_strings}
    flags = set(re.findall(r"(?<![\w-])--[a-z][\w-]*", line))
    assert flags <= options, f"{line}\n  not options of `unpaired {' '.join(words)}`: {sorted(flags - options)}"
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args([*words, "--help"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("usage: unpaired")


def test_readme_set_examples_resolve_on_quick():
    """The `--set` examples of the README (the bullet on --set and the torchrun line's speed switches)."""
    bullet = README[README.index("Every setting can be changed"):README.index("Keys every preset accepts")]
    examples = re.findall(r"`([a-z_]+\.[a-z_]+=[^`\s]+)`", bullet)
    assert len(examples) >= 4, bullet
    from unpaired.config import check_input_size

    for example in examples:
        check_input_size(resolve(read_preset("quick"), [example]))


def test_readme_device_values_are_the_accepted_ones():
    listed = re.search(r"`train\.device`\s*\(`([^`]+)`\)", README).group(1).split("|")
    for value in listed:
        resolve(read_preset("quick"), [f"train.device={value.replace('cuda:N', 'cuda:1')}"])
    from unpaired.config import ConfigError

    with pytest.raises(ConfigError, match="mps"):  # the error lists every accepted value, as the README must
        resolve(read_preset("quick"), ["train.device=tpu"])
    assert "mps" in listed


def test_readme_names_the_feature_extractors_the_errors_suggest():
    from unpaired.metrics import fidelity

    suggested = set(re.findall(r"--feature-extractor ([\w-]+)", (REPO / "unpaired/metrics/fidelity.py").read_text()))
    assert suggested, fidelity.__file__
    for name in suggested:
        assert f"--feature-extractor {name}" in README, name


def _help(words):
    sub = dict(_commands())[tuple(words)]
    return sub, sub.format_help()


@pytest.mark.parametrize("words", [w for w, _ in _commands()], ids=" ".join)
def test_every_subcommand_helps_and_shows_examples(words, tmp_path, monkeypatch, capsys):
    sub, text = _help(words)
    assert sub.description and len(sub.description) > 20, f"`unpaired {' '.join(words)}` has no description"
    for action in sub._actions:
        if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            assert action.help and action.help.strip(), f"{' '.join(words)}: {action.dest} has no help text"
    examples = [line.strip() for line in text.splitlines() if line.strip().startswith(f"unpaired {words[0]}")]
    assert len(examples) >= (1 if _subparsers(sub) else 2), f"`unpaired {' '.join(words)} --help`: examples"
    for example in examples:
        args = shlex.split(example.split("  #")[0])[1:]
        parsed = build_parser().parse_args(args)  # every example parses
        if args[0] == "train" and "--resume" not in args:  # a train example resolves its whole configuration
            monkeypatch.chdir(tmp_path)
            assert main([*args, "--dry-run"]) == 0, example
            assert not (tmp_path / "runs").exists()
        assert parsed.command == words[0]


def test_defaults_are_shown():
    _, text = _help(("translate",))
    assert "(default: 8)" in text and "(default: AtoB)" in text and "(default: cpu)" in text


def test_preset_summaries_are_whole_sentences():
    for name, summary in preset_summaries().items():
        assert summary and not re.search(r"\b(a|an|the|for|of|to|on|with|and)$", summary), (name, summary)
    assert preset_summaries()["faces-attentiongan"].endswith("sized for a 2-core CPU")
