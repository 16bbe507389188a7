"""What `pip install .` puts into site-packages: pgdist alone."""

import subprocess
import sys


def test_install_puts_only_pgdist_in_site_packages(tmp_path, request):
    target = tmp_path / "site-packages"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
         str(request.config.rootpath)],
        check=True, capture_output=True, timeout=300, cwd=tmp_path,
    )
    packages = {path.name for path in target.iterdir() if not path.name.endswith((".dist-info", "__pycache__"))}
    assert "pgdist" in packages
    assert packages <= {"pgdist", "bin"}, f"top-level names besides pgdist: {sorted(packages - {'pgdist'})}"
    assert not (target / "envs").exists()
