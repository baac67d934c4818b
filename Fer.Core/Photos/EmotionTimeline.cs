using System.Globalization;
using System.Text;
using PlotStyle = Fer.Core.Plots.PlotStyle;
using ScottPlot;

namespace Fer.Core.Photos;

/// <summary>One second of a video: how many faces were classified in it and their mean probability per class.</summary>
public sealed record TimelineSecond(int Second, int Faces, double[] MeanProbabilities);

/// <summary>A video's emotions over time: the mean class probabilities of the faces in each second, drawn and as CSV.</summary>
public static class EmotionTimeline
{
    public static IReadOnlyList<TimelineSecond> PerSecond(IReadOnlyList<(double Seconds, float[] Probabilities)> faces, int numClasses)
    {
        var buckets = new SortedDictionary<int, (int Count, double[] Sum)>();
        foreach (var (seconds, probs) in faces)
        {
            if (probs.Length != numClasses) throw new ArgumentException($"a face has {probs.Length} probabilities, expected {numClasses}");
            int second = (int)Math.Floor(seconds);
            if (!buckets.TryGetValue(second, out var b)) b = (0, new double[numClasses]);
            for (int k = 0; k < numClasses; k++) b.Sum[k] += probs[k];
            buckets[second] = (b.Count + 1, b.Sum);
        }
        return buckets.Select(kv => new TimelineSecond(kv.Key, kv.Value.Count, kv.Value.Sum.Select(v => v / kv.Value.Count).ToArray())).ToList();
    }

    /// <summary>One line per class (mean probability against the second); seconds without a face leave gaps.</summary>
    public static void SavePng(string pngPath, IReadOnlyList<TimelineSecond> seconds, IReadOnlyList<string> classNames, string title)
    {
        if (seconds.Count == 0) throw new ArgumentException("no seconds with faces", nameof(seconds));
        var plot = new Plot();
        int first = seconds[0].Second, last = seconds[^1].Second;
        var bySecond = seconds.ToDictionary(s => s.Second);
        var xs = Enumerable.Range(first, last - first + 1).Select(s => (double)s).ToArray();
        for (int k = 0; k < classNames.Count; k++)
        {
            var ys = xs.Select(x => bySecond.TryGetValue((int)x, out var s) ? s.MeanProbabilities[k] : double.NaN).ToArray();
            var line = plot.Add.Scatter(xs, ys);
            line.LegendText = classNames[k];
            var bgr = FaceAnnotator.ColorOf(k);
            line.Color = new Color((byte)bgr.Val2, (byte)bgr.Val1, (byte)bgr.Val0);
            line.LineWidth = 2;
            line.MarkerSize = xs.Length > 60 ? 0 : 6;
        }
        plot.Title(title);
        plot.XLabel("second of the video");
        plot.YLabel("mean probability of the second's faces");
        plot.Axes.SetLimitsY(0, 1);
        if (xs.Length == 1) plot.Axes.SetLimitsX(xs[0] - 1, xs[0] + 1);
        PlotStyle.IntegerBottomTicks(plot);
        plot.ShowLegend(Alignment.UpperRight);
        PlotStyle.SaveAtomically(pngPath, tmp => plot.SavePng(tmp, 2 * PlotStyle.PanelWidth, PlotStyle.PanelHeight));
    }

    public static void SaveCsv(string path, IReadOnlyList<TimelineSecond> seconds, IReadOnlyList<string> classNames)
    {
        var csv = new StringBuilder("second,faces");
        foreach (var name in classNames) csv.Append(',').Append(PhotoCsv.Escape(name));
        csv.Append('\n');
        foreach (var s in seconds)
        {
            csv.Append(s.Second.ToString(CultureInfo.InvariantCulture)).Append(',').Append(s.Faces.ToString(CultureInfo.InvariantCulture));
            foreach (var v in s.MeanProbabilities) csv.Append(',').Append(v.ToString("0.######", CultureInfo.InvariantCulture));
            csv.Append('\n');
        }
        PhotoCsv.WriteAtomically(path, csv.ToString());
    }
}
