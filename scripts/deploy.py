"""Deploy a build to a cluster: a track's image becomes <image>:<git sha>, and its pods get ready.

Examples:
  python -m scripts.deploy --backend gateway-api --sha "$(git rev-parse HEAD)"
                             # the canary track, ready and without traffic (then monitor_canary)
  python -m scripts.deploy --backend replicas --sha "$(git rev-parse HEAD)"
                             # the canary's image; its pods start with the first step
  python -m scripts.deploy --backend service-selector --track green --sha "$(git rev-parse HEAD)"
                             # the idle color (then promote --switch green)
  python -m scripts.deploy --backend rolling --sha "$(git rev-parse HEAD)"
                             # stable, rolling update; undone when its pods never get ready
  python -m scripts.deploy --backend gateway-api --sha <older sha> --force --reason "revert #12"

The image is the live one's repository with the SHA as its tag (--image sets another). A SHA
older than the live one (an ancestor of it, by git) is refused unless --force with --reason:
an older commit is never shipped over a newer one by accident. The manifests themselves are
applied by `kubectl apply -k` after `kustomize edit set image` (DEPLOYING.md, "Kubernetes").
Exit codes: 0 deployed and ready, 1 its pods did not become ready (nothing routed to them),
2 usage or configuration error, or an older SHA refused.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from contract.files import REPO_ROOT
from contract.tracks import Track
from scripts.toolkit import cli
from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.options import add_cluster_options, build_backend_of
from scripts.toolkit.platform import gitrefs
from scripts.toolkit.traffic.factory import CLUSTER_BACKENDS
from scripts.toolkit.traffic.kube import workloads
from scripts.toolkit.traffic.kube.common import KeepsState
from scripts.toolkit.traffic.kube.live import read_live
from scripts.toolkit.traffic.kube.rolling import RollingBackend
from scripts.toolkit.traffic.kube.service_selector import ServiceSelectorBackend
from scripts.toolkit.traffic.kube.workloads import (
    REPLICAS,
    SHA,
    STARTED_AT,
    now_text,
)

SHA_PATTERN = re.compile(r"^[0-9a-f]{7,40}$")
FORCED = "forced"


def build_parser() -> argparse.ArgumentParser:
    parser = cli.base_parser("python -m scripts.deploy", __doc__.split("\n\n")[0])
    option = cli.option
    option(parser, "--sha", help="git commit the image was built from (required)")
    option(
        parser, "--backend", choices=CLUSTER_BACKENDS, default="gateway-api",
        help="how the build rolls out",
    )  # fmt: skip
    option(
        parser, "--track", choices=[Track.BLUE.value, Track.GREEN.value],
        help="service-selector: the idle color to deploy to",
    )  # fmt: skip
    option(parser, "--image", help="image repository (default: the live image's)")
    option(
        parser, "--replicas", type=cli.positive(int), default=1,
        help="gateway-api: the canary's pods",
    )  # fmt: skip
    option(parser, "--force", flag=True, help="deploy even a SHA older than the live one")
    option(parser, "--reason", help="why --force: kept on the Deployment")
    option(
        parser, "--repo", type=Path, default=REPO_ROOT, default_text="this checkout",
        help="git repository whose history orders the SHAs",
    )  # fmt: skip
    add_cluster_options(parser)
    parser.set_defaults(platform_dir=REPO_ROOT / ".local" / "platform")
    return parser


def check_newer(new: str, live: str, *, force: bool, reason: str | None, repo: Path) -> str | None:
    """None when `new` may replace `live`; a note when forced. Refuses an ancestor of `live`
    (an older commit), and a pair git cannot order, unless forced with a reason."""
    if force and not (reason or "").strip():
        raise ToolkitError("--force needs --reason: say why an older build goes live.")
    if new == live or not SHA_PATTERN.match(live):
        return None  # the same build, or a live tag that is no commit (e.g. `latest`)
    try:
        old = gitrefs.resolve(live, repo=repo).sha
        candidate = gitrefs.resolve(new, repo=repo).sha
        base = gitrefs.git("merge-base", candidate, old, repo=repo)
        older = candidate != old and base == candidate
    except ToolkitError as exc:
        if force:
            return f"forced without ordering ({exc.message}): {reason}"
        raise ToolkitError(
            f"cannot tell whether {new} is newer than the live {live} ({exc.message}); fetch the "
            "history (git fetch --unshallow), or pass --force --reason."
        ) from exc
    if not older:
        return None
    if not force:
        raise ToolkitError(
            f"{new} is older than the live {live} (an ancestor of it); deploy a newer commit, "
            "or pass --force --reason to ship it anyway."
        )
    return f"older than the live {live}, forced: {reason}"


def command(args: argparse.Namespace) -> cli.Outcome:
    if not args.sha:
        raise ToolkitError("--sha is required: the git commit the image was built from.")
    backend = build_backend_of(args)
    if not isinstance(backend, KeepsState):
        raise ToolkitError("deploy is for the cluster backends.")
    kube, names = backend.kube, backend.names
    if isinstance(backend, ServiceSelectorBackend):
        if args.track is None:
            raise ToolkitError("--backend service-selector needs --track blue or green.")
        serving = backend.state().active
        if serving == args.track:
            raise ToolkitError(
                f"{args.track} serves all traffic; deploy to the idle color, then switch."
            )
        live_track, track = serving or Track.BLUE.value, args.track
    else:
        live_track = Track.STABLE.value
        track = Track.STABLE.value if isinstance(backend, RollingBackend) else Track.CANARY.value
    live = read_live(backend, live_track)
    live_sha = live.sha
    note = check_newer(args.sha, live_sha, force=args.force, reason=args.reason, repo=args.repo)
    image = live.build_image(args.sha, args.image)
    notes: dict[str, str | None] = {SHA: args.sha, STARTED_AT: now_text(), FORCED: note}
    name = names.deployment(track)
    if isinstance(backend, RollingBackend):
        backend.deploy(image, {FORCED: note})
    else:
        workloads.set_image(kube, name, image, notes)
        if args.backend != "replicas":  # replicas: the canary's pods start with its first step
            deployment = workloads.read_deployment(kube, name)
            if workloads.replicas(deployment) == 0:
                count = args.replicas
                workloads.scale(kube, name, count, {REPLICAS: None} if track == "canary" else None)
            workloads.wait_rolled_out(kube, name)
    what = f"{name} runs {image}" + (" (dry run: nothing sent)" if kube.dry_run else "")
    if note:
        what += f"; {note}"
    return cli.Outcome(
        status="deployed",
        exit_code=cli.EXIT_OK,
        data={"deployment": name, "image": image, "sha": args.sha, "live": live_sha, "note": note},
        text=what,
        markdown=f"### Deploy: {what}",
    )


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(build_parser, command, argv)


if __name__ == "__main__":
    sys.exit(main())
