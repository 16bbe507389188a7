"""Property-based tests (hypothesis) of the two ways in: YAML files and command-line flags.

Every input is accepted (a Config) or refused with one line: a ConfigError naming the field
(or the file and line), or argparse's own usage error (exit code 2); never another exception.
No process is started: the parser and the loader run in this one.
"""

import contextlib
import io
import string
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pgdist.cli import build_parser, config_from_args
from pgdist.config import Config, ConfigError, fields

FIELDS = list(fields())
ENVS = ["CartPole-v1", "envs.line:LineWalk", "NoSuchEnv-v0", "no_such_module:Env", "envs.line:NoSuchClass",
        "FrozenLake-v1", "tests.bad_envs:BadLine-raise-v0", ":", ":Env", ".x:Env", "..:Env", "a\x00b:Env", "os:path"]
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-2**70, 2**70), st.floats(),
    st.text(max_size=12), st.sampled_from(ENVS), st.sampled_from(["none", "null", "true", "False", "1e3", "8,8", ""]),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=2), max_leaves=6)
keys = st.sampled_from(FIELDS) | st.text(max_size=8)
mappings = st.dictionaries(keys, values, max_size=6)


def refused_well(error: ConfigError, *names: str) -> bool:
    """One line, naming the field or the place (file and line, or flag)."""
    message = str(error)
    return "\n" not in message and any(name in message for name in names)


def load(text: str | bytes) -> Config | None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        try:
            return Config.from_yaml(path)
        except ConfigError as error:
            assert refused_well(error, str(path), *FIELDS), str(error)
            return None


@SETTINGS
@given(mappings)
def test_any_mapping_of_values_is_accepted_or_refused_naming_the_field(mapping):
    config = load(yaml.safe_dump(mapping))
    if config is not None:
        assert set(mapping) <= set(FIELDS)


@SETTINGS
@given(st.text(alphabet=string.printable + "{}[]:&*!|>'\"%@`\x00é", max_size=80))
def test_any_text_is_accepted_or_refused_naming_the_file(text):
    load(text)


@SETTINGS
@given(st.binary(max_size=40))
def test_any_bytes_are_accepted_or_refused_naming_the_file(data):
    load(data)


@SETTINGS
@given(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=3, unique=True), st.data())
def test_yaml_tags_anchors_and_odd_keys_are_refused_or_read(names, data):
    lines = [f"{name}: {data.draw(st.sampled_from(['!!python/object:os.system x', '&a 3', '*a', '!!binary aGk=', '[1, [2]]', '{a: 1}', '.nan', '.inf', '-.inf', '0x10', '1_000', '~']))}"
             for name in names]
    extra = data.draw(st.sampled_from(["", "? [a, b]\n: 1", "1: 2", "null: 3", "<<: {episodes: 4}", "---\nepisodes: 3"]))
    load("\n".join(lines) + "\n" + extra)


def parse(argv: list[str]) -> Config | None:
    """The parser and config_from_args, as `pgdist train` runs them."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            args = build_parser().parse_args(["train", *argv])
    except SystemExit as exit:
        assert exit.code == 2 and "error:" in stderr.getvalue()
        return None
    try:
        return config_from_args(args)
    except ConfigError as error:
        flags = [argument for argument in argv if argument.startswith("--")]
        assert refused_well(error, *FIELDS, *flags), str(error)
        return None


flag_values = st.one_of(
    st.text(max_size=10), st.sampled_from(ENVS),
    st.sampled_from(["0", "-1", "1", "2.5", "1e400", "nan", "inf", "-inf", "none", "true", "8,8", "2**64", "18446744073709551616"]),
)


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(FIELDS), st.lists(flag_values, min_size=1, max_size=2)), max_size=4))
def test_any_flags_are_accepted_or_refused_naming_the_flag(pairs):
    argv = []
    for name, given_values in pairs:
        flag = "--" + name.replace("_", "-")
        if fields()[name].type == "bool":
            argv.append(flag if given_values[0] else "--no-" + flag[2:])
        else:
            argv += [flag, *given_values]
    parse(argv)


@SETTINGS
@given(st.integers(), st.integers(), st.floats(), st.floats())
def test_numbers_in_range_are_accepted_and_out_of_range_refused(episodes, seed, lr, gamma):
    config = parse(["--episodes", str(episodes), "--seed", str(seed), "--lr", repr(lr), "--gamma", repr(gamma)])
    valid = episodes >= 1 and 0 <= seed < 2**63 and 0 < lr < float("inf") and 0 < gamma <= 1
    assert (config is not None) == valid
    if valid:
        assert (config.episodes, config.seed, config.lr, config.gamma) == (episodes, seed, lr, gamma)
