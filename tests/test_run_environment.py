"""`results.json` records the software and the processor that can change a run's numbers."""

from importlib import metadata

import torch

from mcit.run.environment import RESULT_PACKAGES, cpu_description, package_versions, run_environment


def test_package_versions_are_the_installed_ones():
    versions = package_versions()
    assert set(versions) == set(RESULT_PACKAGES)
    for name in ("torch", "transformers", "tokenizers", "peft", "accelerate", "pillow"):
        assert versions[name] == metadata.version(name)


def test_a_missing_package_is_recorded_as_none(monkeypatch):
    monkeypatch.setattr("mcit.run.environment.RESULT_PACKAGES", ("torch", "no-such-package-mcit"))
    assert package_versions() == {"torch": metadata.version("torch"), "no-such-package-mcit": None}


def test_cpu_is_read_from_the_first_processor_of_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\n"
                       "model name\t: AMD EPYC 7B13\n\nprocessor\t: 1\ncpu family\t: 99\nmodel\t\t: 9\n")
    cpu = cpu_description(cpuinfo)
    assert (cpu["name"], cpu["family"], cpu["model"]) == ("AMD EPYC 7B13", "25", "1")
    assert cpu["capability"] == torch.backends.cpu.get_cpu_capability()
    assert cpu["threads"] == torch.get_num_threads()


def test_a_system_without_cpuinfo_still_names_the_processor(tmp_path):
    cpu = cpu_description(tmp_path / "missing")
    assert cpu["name"] and cpu["family"] is None and cpu["model"] is None
    assert cpu["capability"]


def test_the_environment_entry_holds_software_and_processor():
    env = run_environment("cpu")
    assert env["device"] == "cpu" and env["torch"] == torch.__version__
    assert set(env["packages"]) == set(RESULT_PACKAGES) and env["cpu"]["capability"]
