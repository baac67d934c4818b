using System.Globalization;
using System.Text;
using Fer.Core.Ensemble;
using ScottPlot;

namespace Fer.Core.Plots;

/// <summary>
/// The row-normalised confusion matrix as scikit-learn's ConfusionMatrixDisplay draws it: true classes down,
/// predicted across, a Blues colour scale with a colour bar, each cell's share (and count) written in it.
/// Drawn with ScottPlot 5 (Heatmap, ColorBar, its Blues colormap).
/// </summary>
public static class ConfusionMatrixFigure
{
    public static void SavePng(string path, ClassificationReport report, string title)
    {
        int c = report.ClassNames.Count;
        // Row 0 of the intensities is drawn at the top: true class t occupies y in [c - t - 1, c - t].
        var shares = new double[c, c];
        for (int t = 0; t < c; t++) for (int q = 0; q < c; q++) shares[t, q] = report.RowNormalized[t, q];
        var plot = new Plot();
        plot.Font.Set(FigureFonts.FamilyName);
        var heatmap = plot.Add.Heatmap(shares);
        // ScottPlot's Blues runs dark to light; reversed it is matplotlib's Blues (light for 0, dark blue for 1).
        heatmap.Colormap = new ScottPlot.Colormaps.Blues().Reversed();
        heatmap.ManualRange = new ScottPlot.Range(0, 1);
        // The extent is of cell centres: cells then span [0, c] on both axes.
        heatmap.Extent = new CoordinateRect(0.5, c - 0.5, 0.5, c - 0.5);
        var bar = plot.Add.ColorBar(heatmap);
        bar.Axis.TickLabelStyle.FontSize = 12;
        var barTicks = new[] { 0.0, 0.25, 0.5, 0.75, 1.0 };
        bar.Axis.SetTicks(barTicks, barTicks.Select(t => t.ToString("0.00", CultureInfo.InvariantCulture)).ToArray());
        for (int t = 0; t < c; t++)
        {
            for (int q = 0; q < c; q++)
            {
                double v = shares[t, q];
                var color = v > 0.5 ? Colors.White : new Color(20, 20, 20);
                double x = q + 0.5, y = c - t - 0.5;
                var value = plot.Add.Text(v.ToString("0.00", CultureInfo.InvariantCulture), x, y + 0.08);
                value.LabelFontSize = 19; value.LabelBold = true; value.LabelFontColor = color; value.LabelAlignment = Alignment.MiddleCenter;
                var count = plot.Add.Text($"({report.Confusion[t, q]})", x, y - 0.22);
                count.LabelFontSize = 12; count.LabelFontColor = color; count.LabelAlignment = Alignment.MiddleCenter;
            }
        }
        var centres = Enumerable.Range(0, c).Select(i => i + 0.5).ToArray();
        plot.Axes.Bottom.SetTicks(centres, [.. report.ClassNames]);
        plot.Axes.Left.SetTicks(centres.Select(y => c - y).ToArray(), [.. report.ClassNames]);
        plot.Axes.Bottom.TickLabelStyle.FontSize = 16;
        plot.Axes.Left.TickLabelStyle.FontSize = 16;
        plot.Axes.Bottom.MajorTickStyle.Length = 0;
        plot.Axes.Left.MajorTickStyle.Length = 0;
        plot.Axes.SetLimits(0, c, 0, c);
        plot.HideGrid();
        plot.Title($"{title}\nrows normalised by true class; accuracy {report.Accuracy.ToString("0.000", CultureInfo.InvariantCulture)}");
        plot.Axes.Title.Label.FontSize = 20;
        plot.Axes.Title.Label.Bold = true;
        plot.XLabel("Predicted label", 16);
        plot.YLabel("True label", 16);
        const int cell = 84;
        PlotStyle.SaveAtomically(path, tmp => plot.SavePng(tmp, 150 + cell * c + 200, 110 + cell * c + 110));
    }

    public static void SaveCsv(string path, ClassificationReport report)
    {
        var csv = new StringBuilder("true\\predicted");
        foreach (var name in report.ClassNames) csv.Append(',').Append(Storage.SafeText.CsvField(name));
        csv.Append('\n');
        for (int t = 0; t < report.ClassNames.Count; t++)
        {
            csv.Append(Storage.SafeText.CsvField(report.ClassNames[t]));
            for (int q = 0; q < report.ClassNames.Count; q++)
                csv.Append(',').Append(report.RowNormalized[t, q].ToString("0.######", CultureInfo.InvariantCulture));
            csv.Append('\n');
        }
        var tmp = path + $".{Guid.NewGuid():N}.tmp";
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        File.WriteAllText(tmp, csv.ToString());
        File.Move(tmp, path, overwrite: true);
    }
}
