using System.Globalization;
using System.Text;
using Fer.Core.Ensemble;
using SkiaSharp;

namespace Fer.Core.Plots;

/// <summary>
/// The row-normalised confusion matrix as scikit-learn's ConfusionMatrixDisplay draws it: true classes down,
/// predicted across, a Blues colour scale with a colour bar, each cell's share (and count) written in it.
/// Drawn with SkiaSharp so cell text and colours are exactly controlled.
/// </summary>
public static class ConfusionMatrixFigure
{
    private static readonly (double At, SKColor Color)[] Blues =
    [
        (0.0, new SKColor(247, 251, 255)), (0.25, new SKColor(198, 219, 239)), (0.5, new SKColor(107, 174, 214)),
        (0.75, new SKColor(33, 113, 181)), (1.0, new SKColor(8, 48, 107)),
    ];

    public static void SavePng(string path, ClassificationReport report, string title)
    {
        int c = report.ClassNames.Count;
        const int cell = 84, left = 150, top = 90, bar = 26;
        int grid = cell * c, width = left + grid + 130, height = top + grid + 110;
        using var surface = SKSurface.Create(new SKImageInfo(width, height));
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        using var titleFont = FigureFonts.Make(22, bold: true);
        using var labelFont = FigureFonts.Make(16);
        using var valueFont = FigureFonts.Make(19, bold: true);
        using var countFont = FigureFonts.Make(12);
        using var ink = new SKPaint { Color = new SKColor(30, 30, 30), IsAntialias = true };
        using var fill = new SKPaint { IsAntialias = false };

        canvas.DrawText(title, width / 2f, 38, SKTextAlign.Center, titleFont, ink);
        canvas.DrawText($"rows normalised by true class; accuracy {report.Accuracy.ToString("0.000", CultureInfo.InvariantCulture)}", width / 2f, 64, SKTextAlign.Center, countFont, ink);
        for (int t = 0; t < c; t++)
        {
            for (int q = 0; q < c; q++)
            {
                double v = report.RowNormalized[t, q];
                fill.Color = Blue(v);
                var rect = SKRect.Create(left + q * cell, top + t * cell, cell, cell);
                canvas.DrawRect(rect, fill);
                using var text = new SKPaint { Color = v > 0.5 ? SKColors.White : new SKColor(20, 20, 20), IsAntialias = true };
                canvas.DrawText(v.ToString("0.00", CultureInfo.InvariantCulture), rect.MidX, rect.MidY + 4, SKTextAlign.Center, valueFont, text);
                canvas.DrawText($"({report.Confusion[t, q]})", rect.MidX, rect.MidY + 22, SKTextAlign.Center, countFont, text);
            }
            canvas.DrawText(report.ClassNames[t], left - 10, top + t * cell + cell / 2f + 6, SKTextAlign.Right, labelFont, ink);
            canvas.DrawText(report.ClassNames[t], left + t * cell + cell / 2f, top + grid + 24, SKTextAlign.Center, labelFont, ink);
        }
        using var frame = new SKPaint { Color = new SKColor(120, 120, 120), Style = SKPaintStyle.Stroke, StrokeWidth = 1 };
        canvas.DrawRect(SKRect.Create(left, top, grid, grid), frame);
        canvas.DrawText("Predicted label", left + grid / 2f, top + grid + 56, SKTextAlign.Center, labelFont, ink);
        canvas.Save();
        canvas.RotateDegrees(-90, 24, top + grid / 2f);
        canvas.DrawText("True label", 24, top + grid / 2f + 6, SKTextAlign.Center, labelFont, ink);
        canvas.Restore();

        // Colour bar with ticks.
        int barLeft = left + grid + 30;
        for (int y = 0; y < grid; y++)
        {
            fill.Color = Blue(1 - y / (double)(grid - 1));
            canvas.DrawRect(SKRect.Create(barLeft, top + y, bar, 1), fill);
        }
        canvas.DrawRect(SKRect.Create(barLeft, top, bar, grid), frame);
        foreach (var tick in new[] { 0.0, 0.25, 0.5, 0.75, 1.0 })
        {
            float y = top + (float)((1 - tick) * (grid - 1));
            canvas.DrawLine(barLeft + bar, y, barLeft + bar + 5, y, frame);
            canvas.DrawText(tick.ToString("0.00", CultureInfo.InvariantCulture), barLeft + bar + 8, y + 5, SKTextAlign.Left, countFont, ink);
        }
        PlotStyle.SavePng(surface, path);
    }

    public static void SaveCsv(string path, ClassificationReport report)
    {
        var csv = new StringBuilder("true\\predicted");
        foreach (var name in report.ClassNames) csv.Append(',').Append(name);
        csv.Append('\n');
        for (int t = 0; t < report.ClassNames.Count; t++)
        {
            csv.Append(report.ClassNames[t]);
            for (int q = 0; q < report.ClassNames.Count; q++)
                csv.Append(',').Append(report.RowNormalized[t, q].ToString("0.######", CultureInfo.InvariantCulture));
            csv.Append('\n');
        }
        var tmp = path + $".{Guid.NewGuid():N}.tmp";
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        File.WriteAllText(tmp, csv.ToString());
        File.Move(tmp, path, overwrite: true);
    }

    private static SKColor Blue(double v)
    {
        v = Math.Clamp(v, 0, 1);
        for (int i = 1; i < Blues.Length; i++)
        {
            if (v > Blues[i].At) continue;
            var (a, ca) = Blues[i - 1];
            var (b, cb) = Blues[i];
            double t = (v - a) / (b - a);
            return new SKColor((byte)(ca.Red + (cb.Red - ca.Red) * t), (byte)(ca.Green + (cb.Green - ca.Green) * t), (byte)(ca.Blue + (cb.Blue - ca.Blue) * t));
        }
        return Blues[^1].Color;
    }
}
