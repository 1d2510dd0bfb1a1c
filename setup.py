"""Build hook: compile the gettext catalogs (.po -> .mo) into the wheel at build time.

Everything else about the package is declared in pyproject.toml. Editable installs skip this
step; the runtime then compiles the .po files in memory at first use (llm_cost_tracker.i18n).
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithCatalogs(build_py):
    """build_py, then every ``locale/<lang>/LC_MESSAGES/*.po`` compiled next to it in the build tree."""

    def run(self) -> None:
        super().run()
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        for po in Path("src/llm_cost_tracker/locale").glob("*/LC_MESSAGES/*.po"):
            target = Path(self.build_lib) / po.relative_to("src").with_suffix(".mo")
            target.parent.mkdir(parents=True, exist_ok=True)
            with po.open("rb") as source:
                catalog = read_po(source, locale=po.parts[-3])
            with target.open("wb") as out:
                write_mo(out, catalog, use_fuzzy=False)


setup(cmdclass={"build_py": BuildPyWithCatalogs})
