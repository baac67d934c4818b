using Fer.Core.Training;
using ScottPlot;

namespace Fer.Core.Plots;

/// <summary>Training-curve figures: accuracy and loss per epoch, and validation curves of several models.</summary>
public static class TrainingCurves
{
    /// <summary>
    /// Two panels side by side: accuracy (train, valid) and loss (train, valid) against the epoch, like the seed
    /// report's figure; a dashed line marks <paramref name="bestEpoch"/> when given.
    /// </summary>
    public static void SaveAccuracyAndLoss(string pngPath, string modelName, IReadOnlyList<EpochRecord> history, int? bestEpoch = null)
    {
        ArgumentNullException.ThrowIfNull(history);
        if (history.Count == 0) throw new ArgumentException("history is empty", nameof(history));
        var epochs = history.Select(h => (double)h.Epoch).ToArray();

        // A new Multiplot already holds one plot: use it as the left panel and add the right one.
        var figure = new Multiplot();
        var accuracy = figure.GetPlot(0);
        var loss = figure.AddPlot();
        figure.Layout = new ScottPlot.MultiplotLayouts.Columns();

        AddSeries(accuracy, epochs, history.Select(h => h.Accuracy), "train", PlotStyle.Palette[0]);
        AddSeries(accuracy, epochs, history.Select(h => h.ValidAccuracy), "valid", PlotStyle.Palette[1]);
        Decorate(accuracy, $"{modelName}: accuracy", "accuracy", bestEpoch, Alignment.LowerRight, isAccuracy: true);

        AddSeries(loss, epochs, history.Select(h => h.Loss), "train", PlotStyle.Palette[0]);
        AddSeries(loss, epochs, history.Select(h => h.ValidLoss), "valid", PlotStyle.Palette[1]);
        Decorate(loss, $"{modelName}: loss", "cross-entropy loss", bestEpoch, Alignment.UpperRight);

        PlotStyle.SaveAtomically(pngPath, tmp => figure.SavePng(tmp, 2 * PlotStyle.PanelWidth, PlotStyle.PanelHeight));
    }

    /// <summary>Validation accuracy against the epoch for each named model (e.g. CNN vs DNN).</summary>
    public static void SaveValidationComparison(string pngPath, IReadOnlyDictionary<string, IReadOnlyList<EpochRecord>> histories, string title)
    {
        ArgumentNullException.ThrowIfNull(histories);
        if (histories.Count == 0) throw new ArgumentException("no histories", nameof(histories));
        var plot = new Plot();
        int i = 0;
        foreach (var (name, history) in histories)
        {
            var epochs = history.Select(h => (double)h.Epoch).ToArray();
            AddSeries(plot, epochs, history.Select(h => h.ValidAccuracy), name, PlotStyle.Palette[i++ % PlotStyle.Palette.Length]);
        }
        Decorate(plot, title, "validation accuracy", bestEpoch: null, Alignment.LowerRight, isAccuracy: true);
        PlotStyle.SaveAtomically(pngPath, tmp => plot.SavePng(tmp, PlotStyle.PanelWidth, PlotStyle.PanelHeight));
    }

    /// <summary>
    /// One model's validation curves in several runs, one line per run: accuracy on the left, loss on the right (as
    /// `dvc plots diff` overlays revisions). Earlier runs get larger markers and wider lines, so where runs agree (the
    /// same seed gives the same first epochs) each still shows as a ring.
    /// </summary>
    public static void SaveRunsOverlay(string pngPath, IReadOnlyDictionary<string, IReadOnlyList<EpochRecord>> histories, string model)
    {
        ArgumentNullException.ThrowIfNull(histories);
        if (histories.Count == 0) throw new ArgumentException("no histories", nameof(histories));
        var figure = new Multiplot();
        var accuracy = figure.GetPlot(0);
        var loss = figure.AddPlot();
        figure.Layout = new ScottPlot.MultiplotLayouts.Columns();
        int i = 0, n = histories.Count;
        foreach (var (name, history) in histories)
        {
            var epochs = history.Select(h => (double)h.Epoch).ToArray();
            var color = PlotStyle.Palette[i % PlotStyle.Palette.Length];
            float markerSize = 5 + 4 * (n - 1 - i), lineWidth = 2 + (n - 1 - i);
            AddSeries(accuracy, epochs, history.Select(h => h.ValidAccuracy), name, color, markerSize, lineWidth);
            AddSeries(loss, epochs, history.Select(h => h.ValidLoss), name, color, markerSize, lineWidth);
            i++;
        }
        Decorate(accuracy, $"{model}: validation accuracy", "validation accuracy", bestEpoch: null, Alignment.LowerRight, isAccuracy: true);
        Decorate(loss, $"{model}: validation loss", "validation cross-entropy loss", bestEpoch: null, Alignment.UpperRight);
        PlotStyle.SaveAtomically(pngPath, tmp => figure.SavePng(tmp, 2 * PlotStyle.PanelWidth, PlotStyle.PanelHeight));
    }

    /// <summary>Adds a line with markers, skipping non-finite points (no validation set gives NaN); nothing if none is finite.</summary>
    private static void AddSeries(Plot plot, double[] epochs, IEnumerable<double> values, string label, Color color, float markerSize = 5, float lineWidth = 2)
    {
        var ys = values.ToArray();
        var keep = Enumerable.Range(0, ys.Length).Where(k => double.IsFinite(ys[k])).ToArray();
        if (keep.Length == 0) return;
        var scatter = plot.Add.Scatter(keep.Select(k => epochs[k]).ToArray(), keep.Select(k => ys[k]).ToArray());
        scatter.LegendText = label;
        scatter.Color = color;
        scatter.LineWidth = lineWidth;
        scatter.MarkerSize = keep.Length > 60 ? 0 : markerSize;
    }

    private static void Decorate(Plot plot, string title, string yLabel, int? bestEpoch, Alignment legendCorner, bool isAccuracy = false)
    {
        if (bestEpoch is { } best)
        {
            var line = plot.Add.VerticalLine(best);
            line.LinePattern = LinePattern.Dashed;
            line.Color = Colors.Gray;
            line.LineWidth = 1.5f;
            line.LegendText = $"best epoch {best}";
        }
        plot.Font.Set(FigureFonts.FamilyName); // the sans face of the other figures (ScottPlot's default may be missing)
        plot.Title(title);
        plot.XLabel("epoch");
        plot.YLabel(yLabel);
        PlotStyle.IntegerBottomTicks(plot);
        plot.Axes.AutoScale();
        if (isAccuracy)
        {
            // An accuracy axis stays within 0..1 plus a margin: flat curves autoscale to -0.8..1.2 otherwise.
            var limits = plot.Axes.GetLimits();
            plot.Axes.SetLimitsY(Math.Max(-0.02, limits.Bottom), Math.Min(1.02, limits.Top));
        }
        plot.ShowLegend(LeastCrowdedCorner(plot, legendCorner));
    }

    /// <summary>
    /// The corner whose quarter of the axes holds the fewest data points, the usual one on a tie: a validation accuracy
    /// that falls (early epochs, a tiny run) ran under a legend fixed at the lower right.
    /// </summary>
    internal static Alignment LeastCrowdedCorner(Plot plot, Alignment usual)
    {
        var limits = plot.Axes.GetLimits();
        double width = limits.Right - limits.Left, height = limits.Top - limits.Bottom;
        if (!(width > 0 && height > 0)) return usual;
        var points = plot.GetPlottables().OfType<ScottPlot.Plottables.Scatter>().SelectMany(s => s.Data.GetScatterPoints()).ToList();
        int Crowd(Alignment corner)
        {
            bool right = corner is Alignment.UpperRight or Alignment.LowerRight, upper = corner is Alignment.UpperRight or Alignment.UpperLeft;
            return points.Count(p => (right ? p.X >= limits.Right - 0.4 * width : p.X <= limits.Left + 0.4 * width)
                && (upper ? p.Y >= limits.Top - 0.4 * height : p.Y <= limits.Bottom + 0.4 * height));
        }
        return new[] { usual, Alignment.UpperRight, Alignment.LowerRight, Alignment.UpperLeft, Alignment.LowerLeft }.MinBy(Crowd);
    }
}
