"""Maps the top-level profiles/ folder into the package as aialliance_cli.bundled_profiles."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["aialliance_cli*"]), "aialliance_cli.bundled_profiles"],
    package_dir={"aialliance_cli.bundled_profiles": "profiles"},
)
