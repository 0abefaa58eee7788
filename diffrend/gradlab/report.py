"""The lab's markdown report, from the results dictionary that run_gradlab writes."""

from __future__ import annotations


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _f(x, fmt: str = ".3f") -> str:
    return "-" if x is None else format(x, fmt)


def accuracy_table(rows: list[dict]) -> str:
    """Markdown table: one line per (scene, kind, method)."""
    return _table(
        ["scene", "parameters", "method", "cosine", "gain", "rel. error"],
        [[r["scene"], r["kind"], r["method"], _f(r["cosine"]), _f(r["gain"]),
          _f(r["rel_error"])] for r in rows])


def pose_table(block: dict) -> str:
    """Markdown table of one range of start angles."""
    return _table(
        ["method", "image", "converged", "median error (deg)", "median steps to 5 deg",
         "s / trial"],
        [[r["method"], f"{r['image_size']}^2", f"{r['converged']}/{r['trials']}",
          _f(r["median_error_deg"], ".1f"), _f(r["median_steps_to_converge"], ".0f"),
          _f(r["seconds_per_trial"], ".1f")] for r in block["rows"]])


def fit_table(rows: list[dict]) -> str:
    """Markdown table of the mesh fitting results."""
    return _table(
        ["method", "image", "steps", "held-out IoU mean", "IoU min", "chamfer", "seconds"],
        [[r["method"], f"{r['image_size']}^2", str(r["steps"]), _f(r["heldout_iou_mean"]),
          _f(r["heldout_iou_min"]), _f(r["chamfer"], ".2e"), _f(r["seconds"], ".1f")]
         for r in rows])


def markdown(results: dict) -> str:
    """The whole report."""
    s = results["settings"]
    parts = [
        "# Gradient lab report",
        "",
        f"Command: `{results['command']}`  ",
        f"Device: {results['device']}  ",
        "Time per part (s): " + ", ".join(f"{k} {v:.0f}" for k, v in
                                           results["seconds"].items()),
        "",
    ]
    missing = results.get("missing", [])
    if missing:
        why = ("the run was interrupted" if results.get("interrupted")
               else "the run has not finished them yet")
        parts += [f"**Partial report: {', '.join(missing)} missing ({why}).**", ""]
    parts += [
        "Methods: `soft` = SoftRas / PyTorch3D soft silhouette (sigma as given, or a blur "
        "radius in pixels), `hard` = no edge gradient, `antialias` = nvdiffrast-style "
        "analytic antialiasing, `nmr` = Neural Mesh Renderer's backward rule, `opendr` = "
        "OpenDR's. See docs/gradients.md.",
    ]
    if "pictures" in results:
        parts += [
            "", "## Gradient pictures", "",
            f"Scene {s['picture_scene']}, {s['picture_size']}^2, one smooth random vertex "
            f"motion: the change of each pixel per unit of motion (red: coverage grows, blue: "
            f"shrinks; grey: the object). Truth: central differences of a "
            f"{s['picture_factor']}x{s['picture_factor']}-supersampled render.",
            "", "![gradient pictures](gradient_pictures.png)", "",
            _table(["picture", "cosine to the truth"],
                   [[r["method"], _f(r["cosine_to_truth"])] for r in results["pictures"]]),
        ]
    if "accuracy" in results:
        parts += [
            "", "## Gradient accuracy", "",
            f"L1 silhouette loss to a target from a perturbed scene, {s['accuracy_views']} "
            f"views at {s['accuracy_size']}^2. For {s['accuracy_directions']} random unit "
            "directions per kind (smooth vertex fields; camera rotation + translation), each "
            "method's directional derivative against central differences of a "
            f"{s['accuracy_factor']}x{s['accuracy_factor']}-supersampled render. cosine: "
            "direction (1 is best); gain: <m, t> / <t, t> (1 is best); rel. error: |m - t| / "
            "|t| (0 is best). `truth (eps/2)` compares the truth with itself at half the "
            "step: the noise floor.",
            "", accuracy_table(results["accuracy"]),
        ]
    if "pose" in results:
        parts += [
            "", "## Camera-pose recovery", "",
            f"Scene {s['pose_scene']}: PyTorch3D's camera-position tutorial loop (camera "
            f"position as the parameter, look-at rotation, sum of squared silhouette errors, "
            f"Adam lr 0.05, {s['pose_steps']} steps) from {s['pose_trials']} random starts "
            "per range, the same starts for every method. Converged: final viewing direction "
            "within 5 degrees of the target's.",
        ]
        for block in results["pose"]:
            parts += ["", f"### Starts {block['min_deg']:.0f}-{block['max_deg']:.0f} "
                      "degrees away", "", pose_table(block)]
    if "fit" in results:
        parts += [
            "", "## Silhouette mesh fitting", "",
            f"Scene {s['fit_scene']}: an ico-sphere (level {s['fit_level']}) fitted to "
            f"{s['fit_views']} silhouettes at {s['fit_size']}^2 for {s['fit_steps']} steps "
            "(large-steps parameterisation, Adam), the same for every method. IoU on 8 "
            "held-out views at twice the size; chamfer to the cow (unit size).",
            "", "![fits](fit_silhouettes.png)", "", fit_table(results["fit"]),
        ]
    return "\n".join(parts) + "\n"
