using Fer.Core.Explain;
using ScottPlot;
using SkiaSharp;

namespace Fer.Core.Plots;

/// <summary>
/// Figures of the seed report's sections 4 and 5 and of the attribution methods: grids of small tiles, each with its
/// own one- or two-line title, laid out by SkiaSharp at computed places. The heatmap tiles (maps in jet, the
/// overlays, the colour bar) are ScottPlot 5 heatmaps and a ColorBar rendered into their place (<see cref="HeatmapTiles"/>);
/// grey image tiles (the images, masked images, filter optima and layer outputs) stay SkiaSharp bitmaps coloured by
/// ScottPlot's grayscale colormaps: a picture has no colour scale to show, and one scaled bitmap per tile is simpler and
/// faster than a plot per tile. The layout, titles and text stay SkiaSharp because a ScottPlot Multiplot would make
/// every tile a subplot with its title, axes, ticks and margins to switch off, and would not fit the titles
/// (shrunk, then ellipsised) to the tile width. Images are upscaled by an integer factor without smoothing so single
/// pixels stay visible; labels use a sans font at a size that stays legible when the figure is shown at page width.
/// Files are written to a temporary name and renamed into place.
/// </summary>
public static partial class ExplanationFigures
{
    private const int Margin = 20;
    private const int ColumnGap = 22;
    private const float TitleSize = 22, LabelSize = 15, TickSize = 13;
    private static readonly SKColor Ink = new(20, 20, 20);
    private static readonly SKColor Muted = new(90, 90, 90);
    private static readonly SKColor Kept = new(0, 120, 40);
    private static readonly SKColor Changed = new(190, 20, 20);
    private static readonly IColormap GreyReversed = new ScottPlot.Colormaps.GrayscaleReversed();

    /// <summary>
    /// One row per image: the original, the saliency heatmap (jet, with a colour bar), the masked image and, when
    /// <paramref name="gradCam"/> is given, the Grad-CAM heatmap laid over the original. Titles name the row, the
    /// predicted class with its confidence, the explained class, and the prediction on the masked image (green when it
    /// is unchanged, red when it changed).
    /// </summary>
    public static void SaveSaliencyRows(string pngPath, float[] images, int side, IReadOnlyList<string> rowTitles,
        SaliencyResult saliency, MaskingResult masking, SaliencyResult? gradCam, IReadOnlyList<string> classNames)
    {
        int pixels = side * side;
        int rows = rowTitles.Count;
        if (rows == 0) throw new ArgumentException("no rows to draw", nameof(rowTitles));
        if (images.Length != rows * pixels) throw new ArgumentException($"images hold {images.Length} values, expected {rows}x{side}x{side}", nameof(images));
        if (saliency.Side != side || saliency.Count != rows) throw new ArgumentException("saliency does not match the images", nameof(saliency));
        if (masking.MaskedImages.Length != rows * pixels || masking.OriginalPrediction.Length != rows)
            throw new ArgumentException("masking does not match the images", nameof(masking));
        if (gradCam is not null && (gradCam.Side != side || gradCam.Count != rows))
            throw new ArgumentException("gradCam does not match the images", nameof(gradCam));

        int scale = Math.Max(1, 192 / side);
        int cell = side * scale;
        int columns = gradCam is null ? 3 : 4;
        var columnX = new int[columns];
        int x = Margin;
        for (int c = 0; c < columns; c++)
        {
            columnX[c] = x;
            x += cell + ColumnGap;
            if (c == 1) x += HeatmapTiles.ColourBarWidth + HeatmapTiles.ColourBarLabels; // room for the colour bar right of the heatmap
        }
        double keepFraction = masking.KeepFraction;
        string heading = $"{saliency.Method} saliency: which pixels raise the explained class's score";
        string maskLine = $"Masked: the top {keepFraction:P0} most salient pixels kept, the rest set to the image mean; " +
                          $"prediction kept for {masking.KeptPredictionRate:P0} of these images";
        using var title = FigureFonts.Make(TitleSize, bold: true);
        using var label = FigureFonts.Make(LabelSize);
        int width = Math.Max(WideEnoughFor(heading, title, x - ColumnGap + Margin), WideEnoughFor(maskLine, label, 0));
        const int headerHeight = 2 * 28 + 10;
        int rowTitleHeight = (int)(2 * LabelSize * 1.35) + 6;
        int rowHeight = rowTitleHeight + cell + 18;
        int height = Margin + headerHeight + rows * rowHeight + Margin - 18;

        using var canvasOwner = new FigureCanvas(width, height);
        var canvas = canvasOwner.Canvas;
        using var heatmaps = new HeatmapTiles(side, side, TickSize, Ink);

        Text(canvas, heading, Margin, Margin + TitleSize, title, Ink);
        TextFitted(canvas, maskLine, Margin, Margin + TitleSize + 28, width - 2 * Margin, label, Muted);

        for (int r = 0; r < rows; r++)
        {
            int top = Margin + headerHeight + r * rowHeight;
            int imageTop = top + rowTitleHeight;
            float line1 = top + LabelSize, line2 = top + LabelSize * 2.35f;
            int original = masking.OriginalPrediction[r], masked = masking.MaskedPrediction[r];
            int target = saliency.TargetClasses[r];
            var image = images.AsSpan(r * pixels, pixels);

            TextFitted(canvas, rowTitles[r], columnX[0], line1, cell, label, Ink);
            TextFitted(canvas, $"pred {ClassName(classNames, original)} ({masking.OriginalConfidence[r]:0.00})", columnX[0], line2, cell, label, Muted);
            DrawMap(canvas, image, side, columnX[0], imageTop, scale, HeatmapTiles.Grey);

            TextFitted(canvas, $"saliency for {ClassName(classNames, target)}", columnX[1], line1, cell, label, Ink);
            TextFitted(canvas, saliency.Method, columnX[1], line2, cell, label, Muted);
            heatmaps.MapWithColourBar(canvas, saliency.Map(r), columnX[1], imageTop, scale);

            TextFitted(canvas, $"masked (top {keepFraction:P0} kept)", columnX[2], line1, cell, label, Ink);
            TextFitted(canvas, $"pred {ClassName(classNames, masked)} ({masking.MaskedConfidence[r]:0.00})", columnX[2], line2, cell,
                label, masked == original ? Kept : Changed);
            DrawMap(canvas, masking.MaskedImages.AsSpan(r * pixels, pixels), side, columnX[2], imageTop, scale, HeatmapTiles.Grey);

            if (gradCam is not null)
            {
                TextFitted(canvas, $"Grad-CAM for {ClassName(classNames, gradCam.TargetClasses[r])}", columnX[3], line1, cell, label, Ink);
                TextFitted(canvas, gradCam.Method, columnX[3], line2, cell, label, Muted);
                heatmaps.Overlay(canvas, image, gradCam.Map(r), columnX[3], imageTop, scale);
            }
        }
        canvasOwner.SavePng(pngPath);
    }

    /// <summary>
    /// The images that maximise each filter, in a near-square grid, each labelled with the filter index and its final
    /// mean activation (start activation in brackets).
    /// </summary>
    public static void SaveFilterGrid(string pngPath, FilterAscentResult result, string title)
    {
        int count = result.Count, side = result.Side;
        if (count == 0) throw new ArgumentException("the result holds no filters", nameof(result));
        int columns = (int)Math.Ceiling(Math.Sqrt(count));
        int rows = (count + columns - 1) / columns;
        int scale = Math.Max(1, 144 / side);
        int cell = side * scale;
        const int gap = 12;
        int labelHeight = (int)(LabelSize * 1.4) + 4;
        int headerHeight = (int)(TitleSize * 1.4) + 26;
        using var titleFont = FigureFonts.Make(TitleSize, bold: true);
        int width = WideEnoughFor(title, titleFont, 2 * Margin + columns * cell + (columns - 1) * gap);
        int height = 2 * Margin + headerHeight + rows * (cell + labelHeight) + (rows - 1) * gap;

        using var canvasOwner = new FigureCanvas(width, height);
        var canvas = canvasOwner.Canvas;
        using var label = FigureFonts.Make(LabelSize);
        using var small = FigureFonts.Make(TickSize);
        TextFitted(canvas, title, Margin, Margin + TitleSize, width - 2 * Margin, titleFont, Ink);
        TextFitted(canvas, $"gradient ascent from grey noise, {result.Steps} steps; contrast stretched per image (1st-99th percentile); " +
                           "label: filter, mean activation at the end (at the start)",
            Margin, Margin + TitleSize + 24, width - 2 * Margin, small, Muted);
        for (int f = 0; f < count; f++)
        {
            int left = Margin + f % columns * (cell + gap);
            int top = Margin + headerHeight + f / columns * (cell + labelHeight + gap);
            DrawMap(canvas, result.Image(f), side, left, top, scale, HeatmapTiles.Grey);
            DrawFrame(canvas, left, top, cell, cell); // a white optimum stays visible
            TextFitted(canvas, $"#{f}  {Format(result.FinalActivation[f])} ({Format(result.StartActivation[f])})",
                left, top + cell + LabelSize + 2, cell, label, Ink);
        }
        canvasOwner.SavePng(pngPath);
    }

    /// <summary>
    /// Every channel of a layer's output for one image, gray_r (dark = strong), each channel scaled to its own range
    /// as matplotlib's imshow does; a constant channel is marked as such.
    /// </summary>
    public static void SaveLayerOutputGrid(string pngPath, float[] maps, int channels, int height, int width, string title)
    {
        if (channels < 1 || height < 1 || width < 1 || maps.Length != channels * height * width)
            throw new ArgumentException($"maps hold {maps.Length} values, not {channels}x{height}x{width}", nameof(maps));
        int columns = (int)Math.Ceiling(Math.Sqrt(channels));
        int rows = (channels + columns - 1) / columns;
        int scale = Math.Max(1, 132 / Math.Max(height, width));
        int cellWidth = width * scale, cellHeight = height * scale;
        int labelWidth = Math.Max(cellWidth, 96);
        const int gap = 12;
        int labelHeight = (int)(LabelSize * 1.4) + 4;
        int headerHeight = (int)(TitleSize * 1.4) + 26;
        using var titleFont = FigureFonts.Make(TitleSize, bold: true);
        int figureWidth = WideEnoughFor(title, titleFont, 2 * Margin + columns * labelWidth + (columns - 1) * gap);
        int figureHeight = 2 * Margin + headerHeight + rows * (cellHeight + labelHeight) + (rows - 1) * gap;

        using var canvasOwner = new FigureCanvas(figureWidth, figureHeight);
        var canvas = canvasOwner.Canvas;
        using var label = FigureFonts.Make(LabelSize);
        using var small = FigureFonts.Make(TickSize);
        TextFitted(canvas, title, Margin, Margin + TitleSize, figureWidth - 2 * Margin, titleFont, Ink);
        TextFitted(canvas, $"{channels} channels of {height}x{width}; gray_r: darker = stronger, each channel scaled to its own range",
            Margin, Margin + TitleSize + 24, figureWidth - 2 * Margin, small, Muted);
        int plane = height * width;
        var scaled = new float[plane];
        for (int c = 0; c < channels; c++)
        {
            var map = maps.AsSpan(c * plane, plane);
            float min = float.PositiveInfinity, max = float.NegativeInfinity;
            foreach (var v in map) { if (v < min) min = v; if (v > max) max = v; }
            bool constant = !(max - min > 0);
            for (int k = 0; k < plane; k++) scaled[k] = constant ? 0 : (map[k] - min) / (max - min);
            int left = Margin + c % columns * (labelWidth + gap);
            int top = Margin + headerHeight + c / columns * (cellHeight + labelHeight + gap);
            int cellLeft = left + (labelWidth - cellWidth) / 2;
            DrawMap(canvas, scaled, width, height, cellLeft, top, scale, GreyReversed);
            DrawFrame(canvas, cellLeft, top, cellWidth, cellHeight);
            string text = constant ? $"#{c} constant {Format(min)}" : $"#{c}";
            TextFitted(canvas, text, left, top + cellHeight + LabelSize + 2, labelWidth, label, constant ? Muted : Ink);
        }
        canvasOwner.SavePng(pngPath);
    }

    private static string ClassName(IReadOnlyList<string> names, int index) =>
        index >= 0 && index < names.Count ? names[index] : $"class {index}";

    private static string Format(float value) =>
        Math.Abs(value) >= 100 ? value.ToString("0") : Math.Abs(value) >= 10 ? value.ToString("0.0") : value.ToString("0.00");

    /// <summary>A light grey one-pixel frame just outside a cell of a grid.</summary>
    private static void DrawFrame(SKCanvas canvas, int left, int top, int width, int height)
    {
        using var frame = new SKPaint { Color = new SKColor(200, 200, 200), Style = SKPaintStyle.Stroke, StrokeWidth = 1 };
        canvas.DrawRect(left - 0.5f, top - 0.5f, width + 1, height + 1, frame);
    }

    /// <summary>A grey image tile: one bitmap of the values' colours, upscaled without smoothing.</summary>
    private static void DrawMap(SKCanvas canvas, ReadOnlySpan<float> values, int side, int left, int top, int scale, IColormap colourMap) =>
        DrawMap(canvas, values, side, side, left, top, scale, colourMap);

    private static void DrawMap(SKCanvas canvas, ReadOnlySpan<float> values, int width, int height, int left, int top,
        int scale, IColormap colourMap)
    {
        var colours = new SKColor[width * height];
        for (int i = 0; i < colours.Length; i++)
        {
            double v = values[i];
            var c = colourMap.GetColor(double.IsNaN(v) ? 0 : v); // ScottPlot's colormaps clamp to 0..1
            colours[i] = new SKColor(c.R, c.G, c.B);
        }
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        bitmap.Pixels = colours;
        using var image = SKImage.FromBitmap(bitmap);
        canvas.DrawImage(image, new SKRect(left, top, left + width * scale, top + height * scale),
            new SKSamplingOptions(SKFilterMode.Nearest, SKMipmapMode.None));
    }

    private static void Text(SKCanvas canvas, string text, float x, float baseline, SKFont font, SKColor colour)
    {
        using var paint = new SKPaint { Color = colour, IsAntialias = true };
        canvas.DrawText(text, x, baseline, SKTextAlign.Left, font, paint);
    }

    /// <summary>Draws text shrunk (never below 70% of its size) and then ellipsised to fit the width.</summary>
    /// <summary>A figure width that shows the whole title (grids of few cells are narrower than their titles).</summary>
    private static int WideEnoughFor(string title, SKFont titleFont, int contentWidth) =>
        Math.Max(contentWidth, (int)Math.Ceiling(titleFont.MeasureText(title)) + 2 * Margin);

    private static void TextFitted(SKCanvas canvas, string text, float x, float baseline, float maxWidth, SKFont font, SKColor colour)
    {
        float size = font.Size;
        using var fitted = new SKFont(font.Typeface, size);
        float measured = fitted.MeasureText(text);
        if (measured > maxWidth) fitted.Size = Math.Max(size * 0.7f, size * maxWidth / measured);
        string shown = text;
        while (shown.Length > 1 && fitted.MeasureText(shown) > maxWidth)
            shown = shown[..^2] + "…";
        Text(canvas, shown, x, baseline, fitted, colour);
    }

    /// <summary>A white raster surface that is encoded as PNG and renamed into place.</summary>
    private sealed class FigureCanvas : IDisposable
    {
        private readonly SKSurface _surface;

        public FigureCanvas(int width, int height)
        {
            _surface = SKSurface.Create(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul))
                ?? throw new InvalidOperationException($"cannot create a {width}x{height} drawing surface");
            Canvas.Clear(SKColors.White);
        }

        public SKCanvas Canvas => _surface.Canvas;

        public void SavePng(string path) => PlotStyle.SavePng(_surface, path);

        public void Dispose() => _surface.Dispose();
    }

}
