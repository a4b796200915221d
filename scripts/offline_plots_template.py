"""Make `dvc plots show` render without internet: an HTML template with vega, vega-lite and vega-embed inlined.

DVC's default page loads those three scripts from a CDN, so on an offline machine the data-series plots stay blank
(image plots render either way). This fetches the same versions DVC uses from the npm registry (`npm pack`), inlines
them into a template, and points this clone's DVC at it (`dvc config --local plots.html_template`). The template is
generated, never committed.

    python scripts/offline_plots_template.py        # or: make plots-template
"""

from __future__ import annotations

import stage_pins  # noqa: F401  (the stages' kernel pins, before numpy and torch load)

# isort: split
import subprocess
import tarfile
import tempfile
from pathlib import Path

PACKAGES = {"vega": "5.20.2", "vega-lite": "5.2.0", "vega-embed": "6.18.2"}  # as dvc-render's CDN tags
OUTPUT = Path(".dvc/plots/offline_template.html")


def _script(tgz: Path, name: str) -> str:
    with tarfile.open(tgz) as archive:
        source = archive.extractfile(f"package/build/{name}.min.js").read().decode("utf-8")
    if "</script" in source.lower():
        raise RuntimeError(f"{name}.min.js contains '</script': cannot inline it safely")
    return f"<script>/* {name} (BSD-3-Clause, https://github.com/vega) */\n{source}\n</script>"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        specs = [f"{name}@{version}" for name, version in PACKAGES.items()]
        subprocess.run(["npm", "pack", "--silent", *specs], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
        scripts = [_script(Path(tmp) / f"{name}-{version}.tgz", name) for name, version in PACKAGES.items()]
    page = "\n".join([
        "<!DOCTYPE html>", "<html>", "<head>", "{refresh_tag}", "<title>kinemic plots</title>", *scripts,
        "<style>table { border-spacing: 15px; }</style>", "</head>", "<body>", "{plot_divs}", "</body>", "</html>",
    ])
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(page)
    subprocess.run(["dvc", "config", "--local", "plots.html_template", str(OUTPUT.relative_to(".dvc"))], check=True)
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size / 1e6:.1f} MB); `dvc plots show` now renders offline")


if __name__ == "__main__":
    main()
