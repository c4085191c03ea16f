"""Run the database migrations of a deploy where the service runs, or print the live commit.

Examples:
  python -m scripts.migrate --backend gateway-api --phase expand --sha "$SHA"
      # before the rollout: Job ai-service-migrate with <live image's repository>:<sha>, waited for
  python -m scripts.migrate --backend gateway-api --phase contract --sha "$SHA"
      # after full promotion: the same Job, `--phase contract`
  python -m scripts.migrate --backend local --phase expand
      # the local platform: `python -m app.db upgrade --phase expand` on its database
  python -m scripts.migrate --backend gateway-api --show-live --output json
      # the commit production runs now (the migration gate's --base)

On a cluster the Job (k8s/base/migrate-job.yaml, or --job-manifest) replaces the last one, runs
the build's image with the service's settings and Secret, and is waited for: Complete lets the
deploy go on; Failed, or not done within --job-timeout, stops it before any traffic moves
(DEPLOYING.md, "Database migrations: expand, migrate, contract"). The live commit is the image
tag of the Deployment serving all traffic (stable, or the serving color): what runs, not what a
rollout meant to ship. On the local platform it is the stable instance's commit.
Exit codes: 0 migrated (or printed), 1 the migration failed or timed out (nothing moved),
2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import subprocess  # nosec B404  # runs `python -m app.db`, the service's own migration command
import sys
from collections.abc import Sequence
from pathlib import Path

from contract.files import REPO_ROOT
from contract.tracks import Track
from scripts.toolkit import cli
from scripts.toolkit.cli import EXIT_FAILED, ToolkitError
from scripts.toolkit.options import add_cluster_options, add_platform_option, build_backend_of
from scripts.toolkit.traffic.factory import BACKENDS

PHASES = ("expand", "contract")


def build_parser() -> argparse.ArgumentParser:
    parser = cli.base_parser("python -m scripts.migrate", __doc__.split("\n\n")[0])
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "\n\n".join(__doc__.split("\n\n")[1:])
    option = cli.option
    option(parser, "--backend", choices=BACKENDS, default="local", help="where the service runs")
    option(parser, "--phase", choices=PHASES, help="expand (before a rollout) or contract (after)")
    option(parser, "--sha", help="cluster: the git commit whose image runs the migration")
    option(parser, "--image", help="cluster: image repository (default: the live image's)")
    option(
        parser, "--job-manifest", type=Path, default=None, default_text="k8s/base/migrate-job.yaml",
        help="cluster: the migration Job's manifest",
    )  # fmt: skip
    option(
        parser, "--job-timeout", type=cli.positive(float), default=600.0,
        help="cluster: seconds the Job may take before the deploy stops",
    )  # fmt: skip
    option(parser, "--show-live", flag=True, help="print the live commit instead of migrating")
    add_platform_option(parser)
    add_cluster_options(parser)
    return parser


def live_local(platform_dir: Path) -> str | None:
    """The commit the local platform's stable instance runs (None: no platform)."""
    from scripts.toolkit.platform.state import StateStore  # noqa: PLC0415  # optional part

    state = StateStore(platform_dir).try_read()
    stable = state.processes.get(Track.STABLE.value) if state else None
    return (stable.git_sha or stable.version) if stable else None


def live_cluster(args: argparse.Namespace) -> tuple[str, str]:
    """The Deployment serving all traffic on the cluster, and the commit its image is tagged
    with (the service-selector backend: the serving color's)."""
    from scripts.toolkit.traffic.kube.common import KeepsState  # noqa: PLC0415  # optional part
    from scripts.toolkit.traffic.kube.live import read_live  # noqa: PLC0415

    backend = build_backend_of(args)
    if not isinstance(backend, KeepsState):
        raise ToolkitError(f"--backend {args.backend} keeps no state on a cluster.")
    live = read_live(backend)
    return live.name, live.sha


def show_live(args: argparse.Namespace) -> cli.Outcome:
    if args.backend == "local":
        where, live = f"the local platform in {args.platform_dir}", live_local(args.platform_dir)
    else:
        deployment, live = live_cluster(args)
        where = f"Deployment {deployment}"
    text = f"live: {live or 'unknown'} ({where})"
    return cli.Outcome(
        status="live" if live else "unknown",
        exit_code=cli.EXIT_OK,
        data={"live": live, "where": where},
        text=text,
        markdown=f"Live commit: `{live or 'unknown'}` ({where})",
    )


def migrate_local(args: argparse.Namespace) -> cli.Outcome:
    """`python -m app.db upgrade --phase <phase>` of this checkout on the platform's database."""
    from contract import settings  # noqa: PLC0415  # the setting names the service reads
    from scripts.toolkit.platform.launch import DATABASE_FILE, clean_environment  # noqa: PLC0415

    database = Path(args.platform_dir).resolve() / DATABASE_FILE
    database.parent.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{database}"
    argv = [sys.executable, "-m", "app.db", "upgrade", "--phase", args.phase]
    env = {**clean_environment(), settings.DATABASE_URL: url}
    done = subprocess.run(  # noqa: S603  # nosec B603  # a fixed module of this checkout
        argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=args.job_timeout,
        check=False,
    )  # fmt: skip
    said = (done.stdout.strip() or done.stderr.strip()).splitlines()
    if done.returncode != 0:
        why = done.stderr.strip().splitlines()
        raise ToolkitError(
            f"the {args.phase} migration of the local platform's database failed "
            f"({why[-1] if why else 'exit ' + str(done.returncode)}); no traffic moved: fix the "
            "revision and deploy again.",
            exit_code=EXIT_FAILED,
        )
    text = f"local platform database ({database}): {said[-1] if said else 'migrated'}"
    return cli.Outcome(
        status="migrated",
        exit_code=cli.EXIT_OK,
        data={"phase": args.phase, "database": str(database)},
        text=text,
        markdown=f"### Migration ({args.phase}): {text}",
    )


def migrate_cluster(args: argparse.Namespace) -> cli.Outcome:
    """The migration Job with the build's image, waited for."""
    from scripts.toolkit.migrations.job import (  # noqa: PLC0415  # optional part
        JOB_MANIFEST,
        read_manifest,
        run_migration_job,
        service_env_from,
    )
    from scripts.toolkit.traffic.kube.common import KeepsState  # noqa: PLC0415
    from scripts.toolkit.traffic.kube.live import read_live  # noqa: PLC0415

    if not args.sha:
        raise ToolkitError("--sha is required on a cluster: the commit whose image migrates.")
    manifest = read_manifest(args.job_manifest or JOB_MANIFEST)
    backend = build_backend_of(args)
    if not isinstance(backend, KeepsState):
        raise ToolkitError(f"--backend {args.backend} runs no Job.")
    live = read_live(backend)
    run = run_migration_job(
        backend.kube,
        manifest,
        image=live.build_image(args.sha, args.image),
        phase=args.phase,
        sha=args.sha,
        env_from=service_env_from(live.deployment),
        timeout=args.job_timeout,
    )
    dry = " (dry run: nothing sent)" if backend.kube.dry_run else ""
    text = f"Job {run.name} ({run.phase}) completed with {run.image} in {run.seconds:g} s{dry}"
    return cli.Outcome(
        status="migrated",
        exit_code=cli.EXIT_OK,
        data=run.to_dict(),
        text=text,
        markdown=f"### Migration ({run.phase}): {text}",
    )


def command(args: argparse.Namespace) -> cli.Outcome:
    if args.show_live:
        return show_live(args)
    if not args.phase:
        raise ToolkitError("--phase is required: expand (before a rollout) or contract (after).")
    return migrate_local(args) if args.backend == "local" else migrate_cluster(args)


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(build_parser, command, argv)


if __name__ == "__main__":
    sys.exit(main())
