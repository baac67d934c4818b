using System.Globalization;
using ScottPlot;
using ScottPlot.Plottables;
using SkiaSharp;

namespace Fer.Core.Plots;

/// <summary>
/// The heatmap tiles of the explanation figures, drawn by ScottPlot 5 into a rectangle of a SkiaSharp canvas: a
/// map in jet on the fixed scale 0..1, optionally with a labelled colour bar (ScottPlot's ColorBar) to its right, and
/// keras-vis's overlay, the image as a grayscale heatmap with the map as a jet heatmap at 50% opacity on top. Each
/// tile is a frameless plot whose data area is exactly the tile, the heatmap unsmoothed, so every map pixel is a
/// sharp scale x scale block. Values outside 0..1 are clamped; a NaN is left transparent (white, or the image in
/// the overlay). One instance draws every tile of a figure: its plots are made once (on first use) and only their
/// intensities change from tile to tile, and the colour bar, the same in every row, is rendered once into an
/// SKPicture that each row replays; this keeps a figure of dozens of tiles fast.
/// </summary>
internal sealed class HeatmapTiles : IDisposable
{
    /// <summary>The space right of a map that <see cref="MapWithColourBar"/> draws into: gap, bar, ticks and labels.</summary>
    public const int ColourBarGap = 8, ColourBarWidth = 16, ColourBarLabels = 44;

    public const int ColourBarSpace = ColourBarGap + ColourBarWidth + ColourBarLabels;

    /// <summary>Matplotlib's jet (ScottPlot's 256-entry table): 0 dark blue (0,0,127), 0.5 green, 1 dark red (127,0,0).</summary>
    public static readonly IColormap Jet = new ScottPlot.Colormaps.Jet();

    /// <summary>0 black, 1 white.</summary>
    public static readonly IColormap Grey = new ScottPlot.Colormaps.Grayscale();

    private readonly int _width, _height;
    private readonly float _tickSize;
    private readonly SKColor _ink;
    private (Plot Plot, Heatmap Map)? _map;
    private SKPicture? _colourBar;
    private (Plot Plot, Heatmap Image, Heatmap Map)? _overlay;

    public HeatmapTiles(int width, int height, float tickSize, SKColor ink)
    {
        if (width < 1 || height < 1) throw new ArgumentOutOfRangeException(nameof(width), $"a {width}x{height} heatmap has no pixels");
        _width = width;
        _height = height;
        _tickSize = tickSize;
        _ink = ink;
    }

    /// <summary>The map (width x height values, row-major, top row first) in jet, scaled by <paramref name="scale"/>.</summary>
    public void Map(SKCanvas canvas, ReadOnlySpan<float> map, int left, int top, int scale)
    {
        var (plot, heatmap) = _map ??= MapPlot();
        Fill(heatmap, map);
        Render(plot, canvas, left, top, _width * scale, _height * scale);
    }

    /// <summary>The map in jet with a colour bar 0..1 (ticks every 0.25) in the <see cref="ColourBarSpace"/> pixels right of it
    /// (recorded at the first call's <paramref name="scale"/>: a figure draws all its maps at one scale).</summary>
    public void MapWithColourBar(SKCanvas canvas, ReadOnlySpan<float> map, int left, int top, int scale)
    {
        Map(canvas, map, left, top, scale);
        _colourBar ??= RecordColourBar(_width * scale, _height * scale);
        canvas.DrawPicture(_colourBar, left, top);
    }

    /// <summary>The image in grey with the map's jet colours blended over it at 50%.</summary>
    public void Overlay(SKCanvas canvas, ReadOnlySpan<float> image, ReadOnlySpan<float> map, int left, int top, int scale)
    {
        if (_overlay is null)
        {
            var plot = TilePlot();
            var grey = Add(plot, Grey);
            var hot = Add(plot, Jet);
            hot.Opacity = 0.5;
            _overlay = (plot, grey, hot);
        }
        var (overlayPlot, imageMap, heat) = _overlay.Value;
        Fill(imageMap, image);
        Fill(heat, map);
        Render(overlayPlot, canvas, left, top, _width * scale, _height * scale);
    }

    public void Dispose()
    {
        _map?.Plot.Dispose();
        _colourBar?.Dispose();
        _overlay?.Plot.Dispose();
    }

    private (Plot, Heatmap) MapPlot()
    {
        var plot = TilePlot();
        return (plot, Add(plot, Jet));
    }

    /// <summary>
    /// The colour bar of a map of <paramref name="mapWidth"/> x <paramref name="mapHeight"/> pixels, recorded with the
    /// map's place at the origin: a plot of a hidden jet heatmap on 0..1 with its ColorBar in the space right of the data
    /// area (the hidden right axis, of fixed size, is the gap), on transparent backgrounds so it leaves the map alone,
    /// with a one-pixel outline.
    /// </summary>
    private SKPicture RecordColourBar(int mapWidth, int mapHeight)
    {
        using var plot = TilePlot();
        plot.FigureBackground.Color = Colors.Transparent;
        plot.DataBackground.Color = Colors.Transparent;
        var heatmap = Add(plot, Jet);
        heatmap.IsVisible = false;
        plot.Axes.Right.MinimumSize = plot.Axes.Right.MaximumSize = ColourBarGap;
        plot.Layout.Fixed(new PixelPadding(0, ColourBarSpace, 0, 0));
        var bar = plot.Add.ColorBar(heatmap);
        bar.Width = ColourBarWidth;
        var ink = new Color(_ink.Red, _ink.Green, _ink.Blue);
        var ticks = new[] { 0.0, 0.25, 0.5, 0.75, 1.0 };
        bar.Axis.SetTicks(ticks, ticks.Select(t => t.ToString("0.##", CultureInfo.InvariantCulture)).ToArray());
        bar.Axis.TickLabelStyle.FontName = FigureFonts.FamilyName;
        bar.Axis.TickLabelStyle.FontSize = _tickSize;
        bar.Axis.TickLabelStyle.ForeColor = ink;
        bar.Axis.MajorTickStyle.Length = 4;
        bar.Axis.MajorTickStyle.Color = ink;
        bar.Axis.MinorTickStyle.Length = 0;
        bar.Axis.FrameLineStyle.Color = ink;
        int width = mapWidth + ColourBarSpace;
        using var recorder = new SKPictureRecorder();
        var canvas = recorder.BeginRecording(SKRect.Create(width, mapHeight));
        Render(plot, canvas, 0, 0, width, mapHeight);
        // ScottPlot draws the axis line on the bar's right edge only; an outline all round, as matplotlib's, frames it.
        using var outline = new SKPaint { Color = _ink, Style = SKPaintStyle.Stroke, StrokeWidth = 1 };
        canvas.DrawRect(mapWidth + ColourBarGap - 0.5f, -0.5f, ColourBarWidth + 1, mapHeight + 1, outline);
        return recorder.EndRecording();
    }

    /// <summary>A plot without title, axes, grid or padding: its data area is the rectangle it is rendered into.</summary>
    private static Plot TilePlot()
    {
        var plot = new Plot();
        plot.RenderManager.ClearCanvasBeforeEachRender = false; // the canvas holds the rest of the figure
        plot.Layout.Frameless();
        plot.Layout.Fixed(new PixelPadding(0));
        plot.HideGrid();
        plot.FigureBackground.Color = Colors.White;
        plot.DataBackground.Color = Colors.White;
        return plot;
    }

    private Heatmap Add(Plot plot, IColormap colormap)
    {
        var heatmap = plot.Add.Heatmap(new double[_height, _width]);
        heatmap.Colormap = colormap;
        heatmap.Smooth = false;
        heatmap.ManualRange = new ScottPlot.Range(0, 1);
        // Cells span [0, width] x [0, height]; the first row of intensities is the top one.
        heatmap.CellAlignment = Alignment.LowerLeft;
        plot.Axes.SetLimits(0, _width, 0, _height);
        return heatmap;
    }

    private void Fill(Heatmap heatmap, ReadOnlySpan<float> values)
    {
        if (values.Length != _width * _height)
            throw new ArgumentException($"a {_width}x{_height} heatmap needs {_width * _height} values, not {values.Length}", nameof(values));
        var cells = heatmap.Intensities;
        for (int y = 0, i = 0; y < _height; y++)
            for (int x = 0; x < _width; x++, i++)
                cells[y, x] = values[i];
        heatmap.Update();
    }

    private static void Render(Plot plot, SKCanvas canvas, int left, int top, int width, int height) =>
        plot.Render(canvas, new PixelRect(left, left + width, top + height, top));
}
