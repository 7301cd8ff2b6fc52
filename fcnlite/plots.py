"""Training curves as a PNG (loss and the evaluation metrics against iterations), when matplotlib is installed."""
import json
import os


def read_log(path):
    if not os.path.exists(path):
        return [], []
    with open(path) as file:
        records = [json.loads(line) for line in file if line.strip()]
    return [r for r in records if "loss" in r], [r for r in records if r.get("type") == "eval"]


def plot_training_curves(log_path, png_path, log=print):
    """Draw loss (raw and smoothed) and mean IU / pixel accuracy; returns False without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed: no curves.png (pip install matplotlib)")
        return False
    losses, evals = read_log(log_path)
    figure, (loss_axes, metric_axes) = plt.subplots(1, 2, figsize=(11, 4))
    if losses:
        iterations = [r["iteration"] for r in losses]
        values = [r["loss"] for r in losses]
        loss_axes.plot(iterations, values, color="0.75", linewidth=0.8, label="loss")
        smoothed, running = [], None
        for value in values:
            running = value if running is None else 0.95 * running + 0.05 * value
            smoothed.append(running)
        loss_axes.plot(iterations, smoothed, color="C0", label="smoothed")
        loss_axes.legend()
    loss_axes.set(title="training loss", xlabel="iteration")
    for key, label in (("mean_iu", "mean IU"), ("pixel_accuracy", "pixel accuracy"), ("iou", "foreground IoU")):
        points = [(r["iteration"], r[key]) for r in evals if r.get(key) is not None]
        if points:
            metric_axes.plot(*zip(*points), marker="o", label=label)
    metric_axes.set(title="validation", xlabel="iteration", ylim=(0, 1))
    if evals:
        metric_axes.legend()
    figure.tight_layout()
    figure.savefig(png_path, dpi=100)
    plt.close(figure)
    return True
