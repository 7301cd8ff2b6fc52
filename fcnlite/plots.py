"""Training curves as a PNG (loss and the evaluation metrics against iterations), when matplotlib is installed."""
import json
import os


def read_log(path):
    if not os.path.exists(path):
        return [], []
    with open(path) as file:
        records = [json.loads(line) for line in file if line.strip()]
    return [r for r in records if "loss" in r], [r for r in records if r.get("type") == "eval"]


class RunningAverage:
    """An exponential moving average of the values added so far, with Adam's bias correction: the
    weighted mean of all of them, weights decay^age. So the first value does not hold the curve up
    (or down) for the next hundred steps, as an average started at it would."""

    def __init__(self, decay=0.95):
        self.decay, self.total, self.weight = decay, 0.0, 0.0

    def add(self, value):
        """Take one more value; returns the average."""
        self.total = self.decay * self.total + (1 - self.decay) * value
        self.weight = self.decay * self.weight + (1 - self.decay)
        return self.total / self.weight


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
        running = RunningAverage()
        smoothed = [running.add(value) for value in values]
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
