using Fer.Core.Explain;
using ScottPlot;
using SkiaSharp;

namespace Fer.Core.Plots;

public static partial class ExplanationFigures
{
    /// <summary>
    /// One attribution method on a row of images: per column an image (titled), its map in jet and the map laid over
    /// the image; the heading names the method and, when given, lines (split at '\n') of its measured faithfulness.
    /// </summary>
    public static void SaveMethodGrid(string pngPath, float[] images, int side, IReadOnlyList<string> columnTitles,
        SaliencyResult maps, IReadOnlyList<string> classNames, string heading, string? note = null)
    {
        int count = columnTitles.Count, pixels = side * side;
        if (count == 0) throw new ArgumentException("no images to draw", nameof(columnTitles));
        if (images.Length != count * pixels) throw new ArgumentException($"images hold {images.Length} values, expected {count}x{side}x{side}", nameof(images));
        if (maps.Side != side || maps.Count != count) throw new ArgumentException("maps do not match the images", nameof(maps));
        int scale = Math.Max(1, 128 / side), cell = side * scale;
        const int gap = 14, rowLabel = 70;
        using var titleFont = FigureFonts.Make(TitleSize, bold: true);
        using var label = FigureFonts.Make(LabelSize);
        using var small = FigureFonts.Make(TickSize);
        int labelHeight = (int)(2 * LabelSize * 1.35) + 4;
        var noteLines = note?.Split('\n') ?? [];
        int headerHeight = (int)(TitleSize * 1.4) + 10 + 20 * noteLines.Length;
        int width = WideEnoughFor(heading, titleFont, 2 * Margin + rowLabel + count * cell + (count - 1) * gap);
        int height = 2 * Margin + headerHeight + labelHeight + 3 * cell + 2 * gap;
        using var canvasOwner = new FigureCanvas(width, height);
        var canvas = canvasOwner.Canvas;
        using var heatmaps = new HeatmapTiles(side, side, TickSize, Ink);
        TextFitted(canvas, heading, Margin, Margin + TitleSize, width - 2 * Margin, titleFont, Ink);
        for (int n = 0; n < noteLines.Length; n++)
            TextFitted(canvas, noteLines[n], Margin, Margin + TitleSize + 26 + 20 * n, width - 2 * Margin, small, Muted);
        int top = Margin + headerHeight + labelHeight;
        string[] rows = ["image", "map", "overlay"];
        for (int r = 0; r < 3; r++)
            TextFitted(canvas, rows[r], Margin, top + r * (cell + gap) + cell / 2f + LabelSize / 2, rowLabel - 6, label, Muted);
        for (int i = 0; i < count; i++)
        {
            int left = Margin + rowLabel + i * (cell + gap);
            TextFitted(canvas, columnTitles[i], left, Margin + headerHeight + LabelSize, cell, label, Ink);
            TextFitted(canvas, $"for {ClassName(classNames, maps.TargetClasses[i])}", left, Margin + headerHeight + LabelSize * 2.35f, cell, small, Muted);
            var image = images.AsSpan(i * pixels, pixels);
            DrawMap(canvas, image, side, left, top, scale, HeatmapTiles.Grey);
            heatmaps.Map(canvas, maps.Map(i), left, top + cell + gap, scale);
            heatmaps.Overlay(canvas, image, maps.Map(i), left, top + 2 * (cell + gap), scale);
        }
        canvasOwner.SavePng(pngPath);
    }

    /// <summary>
    /// The cascading randomisation as rows of maps for one image: the trained model's maps, then one row per step with
    /// the layer randomised last (and every layer above it); one column per method, headed by its rank correlation
    /// with the trained maps after the last step. Columns of methods flagged as not depending on the model are marked.
    /// </summary>
    public static void SaveSanityRows(string pngPath, float[] image, int side, SanityResult sanity, IReadOnlyList<string> methodNames,
        IReadOnlyList<string> methodTitles, int imageIndex, string heading)
    {
        if (image.Length != side * side) throw new ArgumentException("image must hold side*side values", nameof(image));
        int columns = methodNames.Count + 1, rows = sanity.Steps.Count + 1;
        int scale = Math.Max(1, 96 / side), cell = side * scale;
        const int gap = 10, rowLabel = 150;
        using var titleFont = FigureFonts.Make(TitleSize, bold: true);
        using var label = FigureFonts.Make(LabelSize);
        using var small = FigureFonts.Make(TickSize);
        int headerHeight = (int)(TitleSize * 1.4) + 34, columnHeader = (int)(2 * TickSize * 1.4) + 8;
        int width = WideEnoughFor(heading, titleFont, 2 * Margin + rowLabel + columns * (cell + gap));
        int height = 2 * Margin + headerHeight + columnHeader + rows * (cell + gap);
        using var canvasOwner = new FigureCanvas(width, height);
        var canvas = canvasOwner.Canvas;
        using var heatmaps = new HeatmapTiles(side, side, TickSize, Ink);
        TextFitted(canvas, heading, Margin, Margin + TitleSize, width - 2 * Margin, titleFont, Ink);
        TextFitted(canvas, $"weight layers re-initialised from the top down ({sanity.WeightLayers} in all); header: Spearman rank correlation with the trained maps " +
                           $"after the last step, red when >= {SanityResult.IndependenceThreshold:0.0} (the map does not depend on the model)",
            Margin, Margin + TitleSize + 26, width - 2 * Margin, small, Muted);
        int gridTop = Margin + headerHeight + columnHeader;
        int Left(int c) => Margin + rowLabel + c * (cell + gap);
        TextFitted(canvas, "image", Left(0), gridTop - columnHeader + TickSize + 2, cell, small, Ink);
        for (int m = 0; m < methodNames.Count; m++)
        {
            double r = sanity.FinalCorrelation(methodNames[m]);
            TextFitted(canvas, methodTitles[m], Left(m + 1), gridTop - columnHeader + TickSize + 2, cell, small, Ink);
            TextFitted(canvas, $"rho {r:0.00}", Left(m + 1), gridTop - columnHeader + 2 * TickSize * 1.4f + 2, cell, small,
                sanity.DependsOnModel(methodNames[m]) ? Kept : Changed);
        }
        for (int row = 0; row < rows; row++)
        {
            int top = gridTop + row * (cell + gap);
            string rowTitle = row == 0 ? "trained" : $"to {sanity.Steps[row - 1].Layer} ({sanity.Steps[row - 1].LayersRandomised}/{sanity.WeightLayers})";
            TextFitted(canvas, rowTitle, Margin, top + cell / 2f + LabelSize / 2, rowLabel - 8, label, row == 0 ? Ink : Muted);
            if (row == 0) DrawMap(canvas, image, side, Left(0), top, scale, HeatmapTiles.Grey); // later rows leave the image column blank
            for (int m = 0; m < methodNames.Count; m++)
            {
                var maps = row == 0 ? sanity.Trained[methodNames[m]] : sanity.Steps[row - 1].Maps[methodNames[m]];
                heatmaps.Map(canvas, maps.Map(imageIndex), Left(m + 1), top, scale);
            }
        }
        canvasOwner.SavePng(pngPath);
    }

    /// <summary>
    /// Every method's faithfulness curves in four panels (deletion, insertion, ROAD most relevant first, ROAD least
    /// relevant first): the mean probability of the explained class against the share of pixels removed or inserted,
    /// with the random-map baseline dashed in grey; legends give each curve's area.
    /// </summary>
    public static void SaveFaithfulnessCurves(string pngPath, IReadOnlyList<(string Title, FaithfulnessResult Result)> methods,
        FaithfulnessResult random, string heading)
    {
        if (methods.Count == 0) throw new ArgumentException("no methods", nameof(methods));
        var figure = new Multiplot();
        var panels = new[] { figure.GetPlot(0), figure.AddPlot(), figure.AddPlot(), figure.AddPlot() };
        figure.Layout = new ScottPlot.MultiplotLayouts.Grid(2, 2);
        (string Name, string X, Func<FaithfulnessResult, FaithfulnessCurve> Curve, string Better)[] kinds =
        [
            ("deletion (mean fill)", "share of pixels deleted, most relevant first", r => r.Deletion, "lower is better"),
            ("insertion (from blurred)", "share of pixels inserted, most relevant first", r => r.Insertion, "higher is better"),
            ("ROAD, most relevant first", "share of pixels removed and imputed", r => r.RoadMorf, "lower is better"),
            ("ROAD, least relevant first", "share of pixels removed and imputed", r => r.RoadLerf, "higher is better"),
        ];
        for (int k = 0; k < 4; k++)
        {
            var plot = panels[k];
            for (int m = 0; m < methods.Count; m++)
            {
                var curve = kinds[k].Curve(methods[m].Result);
                var line = plot.Add.Scatter(curve.Fractions, curve.MeanProbability);
                line.LegendText = $"{methods[m].Title} {curve.Area:0.000}";
                line.Color = PlotStyle.Palette[m % PlotStyle.Palette.Length];
                line.LineWidth = 2;
                line.MarkerSize = 4;
            }
            var baseline = kinds[k].Curve(random);
            var dashed = plot.Add.Scatter(baseline.Fractions, baseline.MeanProbability);
            dashed.LegendText = $"random map {baseline.Area:0.000}";
            dashed.Color = Colors.Gray;
            dashed.LinePattern = LinePattern.Dashed;
            dashed.LineWidth = 2;
            dashed.MarkerSize = 0;
            plot.Title(k == 0 ? $"{heading}: {kinds[k].Name}" : kinds[k].Name);
            plot.XLabel($"{kinds[k].X} ({kinds[k].Better})");
            plot.YLabel("probability of the explained class");
            plot.Axes.SetLimits(0, 1, 0, 1.02);
            plot.ShowLegend(k % 2 == 0 ? Alignment.UpperRight : Alignment.LowerRight);
            plot.Legend.FontSize = 11;
        }
        PlotStyle.SaveAtomically(pngPath, tmp => figure.SavePng(tmp, 2 * PlotStyle.PanelWidth + 160, 2 * PlotStyle.PanelHeight + 160));
    }
}
