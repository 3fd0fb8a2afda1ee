"""`results.json` records the versions of the packages that can change a run's numbers."""

from importlib import metadata

from mcit.run.results import RESULT_PACKAGES, package_versions


def test_package_versions_are_the_installed_ones():
    versions = package_versions()
    assert set(versions) == set(RESULT_PACKAGES)
    for name in ("torch", "transformers", "peft", "accelerate", "pillow"):
        assert versions[name] == metadata.version(name)


def test_a_missing_package_is_recorded_as_none(monkeypatch):
    monkeypatch.setattr("mcit.run.results.RESULT_PACKAGES", ("torch", "no-such-package-mcit"))
    assert package_versions() == {"torch": metadata.version("torch"), "no-such-package-mcit": None}
