import importlib
import json
import pytest

from hera.cli import COMMAND_MODULES, build_parser, main


@pytest.mark.parametrize("name", COMMAND_MODULES)
def test_every_command_module_exists_and_registers(name):
    assert hasattr(importlib.import_module(name), "register")


def test_a_broken_install_fails_loudly(monkeypatch):
    """No silent import fallbacks: a command module that cannot be imported stops `hera` with the import error
    instead of quietly leaving its commands out (the same holds inside hera serve, loadgen and the zoo)."""
    from hera import cli

    monkeypatch.setattr(cli, "COMMAND_MODULES", [*COMMAND_MODULES, "hera.no_such_module"])
    with pytest.raises(ModuleNotFoundError, match="hera.no_such_module"):
        cli.build_parser()


def test_every_command_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, p in sub.choices.items():
        assert p.format_help().strip(), name


def test_machine_command_prints_json_last_line(capsys):
    assert main(["machine"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    d = json.loads(last)
    assert d["logical_cpus"] >= 1 and d["llc_partitioning"] in ("available", "unavailable")


def test_hera_error_is_one_line_exit_2(monkeypatch, capsys):
    from hera import machine_cli
    from hera.errors import ResourceError

    def boom(args):
        raise ResourceError("tenant x needs 9 cores but this machine only has 2")

    monkeypatch.setattr(machine_cli, "_cmd_machine", boom)
    assert main(["machine"]) == 2
    err = capsys.readouterr().err
    assert err == "hera: error: tenant x needs 9 cores but this machine only has 2\n"


def test_unknown_command_fails(capsys):
    with pytest.raises(SystemExit) as e:
        main(["no-such-command"])
    assert e.value.code == 2 and "no-such-command" in capsys.readouterr().err
