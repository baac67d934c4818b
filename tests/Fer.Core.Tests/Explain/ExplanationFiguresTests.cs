using Fer.Core.Explain;
using Fer.Core.Plots;
using SkiaSharp;
using ScottPlot;
using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Tests.Explain;

/// <summary>Writes the figures and checks they are decodable PNGs of a plausible size, then, on maps and images of
/// known values, that the heatmap tiles show jet (dark red for 1, dark blue for 0) as sharp pixel blocks at the
/// places and figure sizes the layout has always had, the colour bar runs from red (top) to blue (bottom) and is
/// labelled, and the overlay is the mean of the grey image and the jet map. Set FER_FIGURES_DIR to keep the figures
/// for looking at.</summary>
public sealed class ExplanationFiguresTests : IDisposable
{
    private const int Side = 48;
    private static readonly string[] ClassNames = ["Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"];
    private readonly string _directory;
    private readonly bool _keep;

    public ExplanationFiguresTests()
    {
        var requested = Environment.GetEnvironmentVariable("FER_FIGURES_DIR");
        _keep = !string.IsNullOrEmpty(requested);
        _directory = _keep ? requested! : Path.Combine(Path.GetTempPath(), "fer-explain-figures-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_directory);
    }

    public void Dispose()
    {
        if (!_keep) Directory.Delete(_directory, recursive: true);
    }

    /// <summary>Smooth face-like test images: a bright oval with two dark eyes and a mouth, shifted per image.</summary>
    private static Tensor FaceLikeImages(int count)
    {
        var pixels = new float[count * Side * Side];
        for (int i = 0; i < count; i++)
            for (int y = 0; y < Side; y++)
                for (int x = 0; x < Side; x++)
                {
                    double cx = 24 + (i % 3) - 1, cy = 24;
                    double face = Math.Pow((x - cx) / 17.0, 2) + Math.Pow((y - cy) / 21.0, 2) < 1 ? 0.75 : 0.2;
                    bool eye = Math.Pow(x - (cx - 7), 2) + Math.Pow(y - 18, 2) < 6 || Math.Pow(x - (cx + 7), 2) + Math.Pow(y - 18, 2) < 6;
                    bool mouth = Math.Abs(y - (33 + i % 2)) < 2 && Math.Abs(x - cx) < 8;
                    pixels[(i * Side + y) * Side + x] = (float)(eye || mouth ? 0.1 : face);
                }
        return torch.tensor(pixels, [count, 1, Side, Side]);
    }

    private static void AssertPng(string path, int minWidth, int minHeight)
    {
        Assert.True(File.Exists(path), $"{path} was not written");
        var bytes = File.ReadAllBytes(path);
        Assert.True(bytes.Length > 2000, $"{path} has only {bytes.Length} bytes");
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes[..4]);
        using var bitmap = SKBitmap.Decode(bytes);
        Assert.NotNull(bitmap);
        Assert.True(bitmap.Width >= minWidth && bitmap.Height >= minHeight, $"{path} is only {bitmap.Width}x{bitmap.Height}");
        // Not a blank page: a good share of the pixels are not white.
        int nonWhite = 0;
        for (int y = 0; y < bitmap.Height; y += 3)
            for (int x = 0; x < bitmap.Width; x += 3)
                if (bitmap.GetPixel(x, y) != SKColors.White) nonWhite++;
        Assert.True(nonWhite > bitmap.Width * bitmap.Height / 9 / 20, $"{path} is nearly blank");
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(path)!, "*.tmp-*"));
    }

    [Fact]
    public void SaliencyRowsFigureIsWritten()
    {
        using var model = new TinyCnn(Side, numClasses: 7, seed: 51);
        using var images = FaceLikeImages(3);
        var saliency = Saliency.Vanilla(model, images);
        var masking = SaliencyMasking.MaskTop(model, images, saliency, 0.3);
        var gradCam = Saliency.GradCam(model, images, "conv2d_2");
        string path = Path.Combine(_directory, "saliency_rows.png");

        ExplanationFigures.SaveSaliencyRows(path, images.data<float>().ToArray(), Side,
            ["image 0 (true Happy)", "image 1 (true Sad)", "image 2 (true Surprise)"], saliency, masking, gradCam, ClassNames);
        AssertPng(path, 4 * Side * 3, 3 * Side * 3);

        string withoutCam = Path.Combine(_directory, "saliency_rows_no_cam.png");
        ExplanationFigures.SaveSaliencyRows(withoutCam, images.data<float>().ToArray(), Side, ["a", "b", "c"], saliency, masking, null, ClassNames);
        AssertPng(withoutCam, 3 * Side * 3, 3 * Side * 3);
    }

    [Fact]
    public void FilterGridFigureIsWritten()
    {
        using var model = new TinyCnn(Side, numClasses: 7, seed: 52, filters1: 8);
        var result = FilterVisualizer.Ascend(model, "conv2d_1", new FilterAscentOptions(Steps: 20), torch.CPU);
        string path = Path.Combine(_directory, "filters.png");
        ExplanationFigures.SaveFilterGrid(path, result, $"Filters of layer conv2d_1 (# Ascent Epoch {result.Steps})");
        AssertPng(path, 3 * Side * 3, 3 * Side * 2);
    }

    /// <summary>8 channels of 48x48 in a 3x3 grid, each channel drawn at twice its size at least.</summary>
    [Fact]
    public void LayerOutputGridFigureIsWritten()
    {
        using var model = new TinyCnn(Side, numClasses: 7, seed: 53, filters1: 8);
        using var images = FaceLikeImages(1);
        var maps = LayerOutputs.Capture(model, "conv2d_1", images, out int c, out int h, out int w);
        string path = Path.Combine(_directory, "layer_output.png");
        ExplanationFigures.SaveLayerOutputGrid(path, maps, c, h, w, "Output of layer conv2d_1 (Given image 0)");
        Assert.Equal((8, 48, 48), (c, h, w));
        AssertPng(path, 3 * 2 * Side, 3 * 2 * Side);
    }

    private static readonly IColormap Jet = new ScottPlot.Colormaps.Jet();
    private static readonly IColormap Grey = new ScottPlot.Colormaps.Grayscale();

    /// <summary>A map of known values: 1 on the left half, 0 on the right, except one pixel of 1 at (30, 10) and one of
    /// 0.5 at (40, 40) in the right half, and one of 0 at (5, 40) in the left.</summary>
    private static float[] KnownMap()
    {
        var map = new float[Side * Side];
        for (int y = 0; y < Side; y++)
            for (int x = 0; x < Side; x++)
                map[y * Side + x] = x < Side / 2 ? 1 : 0;
        map[10 * Side + 30] = 1;
        map[40 * Side + 40] = 0.5f;
        map[40 * Side + 5] = 0;
        return map;
    }

    /// <summary>An image of known grey levels: 0.8 on the top half, 0.2 on the bottom, 0.5 at (40, 40).</summary>
    private static float[] KnownImage()
    {
        var image = new float[Side * Side];
        for (int y = 0; y < Side; y++)
            for (int x = 0; x < Side; x++)
                image[y * Side + x] = y < Side / 2 ? 0.8f : 0.2f;
        image[40 * Side + 40] = 0.5f;
        return image;
    }

    private static SKBitmap Decode(string path) =>
        SKBitmap.Decode(File.ReadAllBytes(path)) ?? throw new InvalidOperationException($"{path} is not a decodable image");

    private static void AssertColour(SKColor actual, (int R, int G, int B) expected, int tolerance, string what) =>
        Assert.True(Math.Abs(actual.Red - expected.R) <= tolerance && Math.Abs(actual.Green - expected.G) <= tolerance &&
                    Math.Abs(actual.Blue - expected.B) <= tolerance, $"{what}: {actual} is not within {tolerance} of {expected}");

    private static (int R, int G, int B) Rgb(Color c) => (c.R, c.G, c.B);

    private static (int R, int G, int B) Rgb(SKColor c) => (c.Red, c.Green, c.Blue);

    /// <summary>The colour drawn for map pixel (x, y) of a tile at (left, top) upscaled by scale: every pixel of its
    /// scale x scale block has it (the tile is not smoothed); its centre pixel is returned.</summary>
    private static SKColor Block(SKBitmap bitmap, int left, int top, int scale, int x, int y)
    {
        int bx = left + x * scale, by = top + y * scale;
        var colour = bitmap.GetPixel(bx + scale / 2, by + scale / 2);
        for (int dy = 0; dy < scale; dy++)
            for (int dx = 0; dx < scale; dx++)
                Assert.Equal(colour, bitmap.GetPixel(bx + dx, by + dy));
        return colour;
    }

    /// <summary>Asserts the tile at (left, top) shows <see cref="KnownMap"/> in jet, block by block for the known pixels.</summary>
    private static void AssertKnownMapTile(SKBitmap bitmap, int left, int top, int scale, string what)
    {
        var darkRed = (127, 0, 0);
        var darkBlue = (0, 0, 127);
        AssertColour(Block(bitmap, left, top, scale, 10, 10), darkRed, 2, $"{what}, value 1");
        AssertColour(Block(bitmap, left, top, scale, 40, 10), darkBlue, 2, $"{what}, value 0");
        AssertColour(Block(bitmap, left, top, scale, 40, 40), (121, 255, 125), 3, $"{what}, value 0.5 (jet's green)");
        // The single pixels keep their own colour up to their block's edges: the tile is pixel-sharp.
        Assert.Equal(Block(bitmap, left, top, scale, 10, 10), Block(bitmap, left, top, scale, 30, 10));
        Assert.Equal(Block(bitmap, left, top, scale, 40, 10), Block(bitmap, left, top, scale, 29, 10));
        Assert.Equal(Block(bitmap, left, top, scale, 40, 10), Block(bitmap, left, top, scale, 31, 10));
        Assert.Equal(Block(bitmap, left, top, scale, 40, 10), Block(bitmap, left, top, scale, 5, 40));
        Assert.Equal(Block(bitmap, left, top, scale, 10, 10), Block(bitmap, left, top, scale, 4, 40));
        // Nothing is drawn outside the tile: the figure's white just left of and above it.
        Assert.Equal(SKColors.White, bitmap.GetPixel(left - 2, top + 10));
        Assert.Equal(SKColors.White, bitmap.GetPixel(left + 10, top - 2));
    }

    /// <summary>Asserts the overlay tile at (left, top) of <see cref="KnownImage"/> and <see cref="KnownMap"/> is their mean.</summary>
    private static void AssertKnownOverlayTile(SKBitmap bitmap, int left, int top, int scale, string what)
    {
        foreach (var (x, y, grey, heat) in new[] { (10, 10, 0.8, 1.0), (40, 10, 0.8, 0.0), (10, 30, 0.2, 1.0), (40, 30, 0.2, 0.0), (40, 40, 0.5, 0.5) })
        {
            Color g = Grey.GetColor(grey), h = Jet.GetColor(heat);
            AssertColour(Block(bitmap, left, top, scale, x, y), ((g.R + h.R) / 2, (g.G + h.G) / 2, (g.B + h.B) / 2), 2,
                $"{what} at ({x}, {y}), grey {grey} under jet {heat}");
        }
        Assert.NotEqual(Block(bitmap, left, top, scale, 30, 12), Block(bitmap, left, top, scale, 30, 10)); // the single pixel
    }

    /// <summary>
    /// The saliency rows on known maps and images: 48x48 images are drawn 4x (192 pixels); the columns start at x = 20
    /// (image), 234 (saliency map, its colour bar 8 pixels right of it, 16 wide), 508 (masked image) and 722 (Grad-CAM
    /// overlay); row r's tiles start at y = 132 + 256 r; the figure is 20 + 66 + 256 rows + 2 pixels high.
    /// </summary>
    [Fact]
    public void SaliencyRowsShowJetTilesAColourBarAndOverlaysAtTheirPlaces()
    {
        const int rows = 2, scale = 4, cell = Side * scale;
        var images = KnownImage().Concat(KnownImage()).ToArray();
        var maps = KnownMap().Concat(new float[Side * Side]).ToArray(); // row 1: an all-zero map
        var saliency = new SaliencyResult(maps, [3, 4], Side) { Method = "Vanilla gradient" };
        var gradCam = new SaliencyResult(maps, [3, 4], Side) { Method = "Grad-CAM at conv2d_2" };
        var masking = new MaskingResult(images.Select(v => 1 - v).ToArray(), [3, 4], [0.9f, 0.8f], [3, 2], [0.7f, 0.6f], 0.5) { KeepFraction = 0.3 };
        string path = Path.Combine(_directory, "saliency_rows_known.png");
        ExplanationFigures.SaveSaliencyRows(path, images, Side, ["row 0", "row 1"], saliency, masking, gradCam, ClassNames);

        using var bitmap = Decode(path);
        Assert.Equal(20 + 66 + rows * 256 + 2, bitmap.Height);
        Assert.True(bitmap.Width >= 722 + cell + 20, $"the figure is only {bitmap.Width} wide");
        int top = 132;
        AssertKnownMapTile(bitmap, 234, top, scale, "saliency map");
        AssertKnownOverlayTile(bitmap, 722, top, scale, "Grad-CAM overlay");
        Assert.Equal(Rgb(Grey.GetColor(0.8)), Rgb(Block(bitmap, 20, top, scale, 10, 10)));       // the image in grey
        Assert.Equal(Rgb(Grey.GetColor(1 - 0.2)), Rgb(Block(bitmap, 508, top, scale, 10, 30)));  // the masked image
        // Row 1's map is 0 everywhere: dark blue up to the tile's corners.
        AssertColour(Block(bitmap, 234, top + 256, scale, 0, 0), (0, 0, 127), 2, "all-zero map, top left");
        AssertColour(Block(bitmap, 234, top + 256, scale, Side - 1, Side - 1), (0, 0, 127), 2, "all-zero map, bottom right");

        // The colour bar: 16 pixels wide, 8 right of the map, as high as the map; red at the top, green in the middle, blue at the bottom.
        int barLeft = 234 + cell + 8, barCentre = barLeft + 8;
        var barTop = bitmap.GetPixel(barCentre, top + 1);
        var barMiddle = bitmap.GetPixel(barCentre, top + cell / 2);
        var barBottom = bitmap.GetPixel(barCentre, top + cell - 2);
        Assert.True(barTop.Red > 110 && barTop.Green < 30 && barTop.Blue < 30, $"colour bar top {barTop} is not jet's dark red");
        Assert.True(barMiddle.Green > 200 && barMiddle.Red is > 60 and < 190 && barMiddle.Blue is > 60 and < 190, $"colour bar middle {barMiddle} is not jet's green");
        Assert.True(barBottom.Blue > 110 && barBottom.Red < 30 && barBottom.Green < 30, $"colour bar bottom {barBottom} is not jet's dark blue");
        Assert.Equal(SKColors.White, bitmap.GetPixel(barLeft - 4, top + cell / 2)); // the gap between map and bar
        foreach (var (x, y) in new[] { (barLeft - 1, top + cell / 2), (barCentre, top - 1), (barCentre, top + cell) })
            Assert.True(bitmap.GetPixel(x, y) is var p && p.Red < 100 && p.Green < 100 && p.Blue < 100, $"no outline round the colour bar at ({x}, {y})");
        // Tick labels right of the bar: dark text near the 0, 0.5 and 1 ticks, white below the bar.
        bool Ink(int x0, int y0, int y1)
        {
            for (int y = y0; y <= y1; y++)
                for (int x = x0; x < x0 + 40; x++)
                    if (bitmap.GetPixel(x, y) is var p && p.Red < 120 && p.Green < 120 && p.Blue < 120) return true;
            return false;
        }
        Assert.True(Ink(barLeft + 18, top - 6, top + 8), "no label at the colour bar's top (1)");
        Assert.True(Ink(barLeft + 18, top + cell / 2 - 7, top + cell / 2 + 7), "no label at the colour bar's middle (0.5)");
        Assert.True(Ink(barLeft + 18, top + cell - 8, top + cell + 6), "no label at the colour bar's bottom (0)");
        Assert.False(Ink(barLeft, top + cell + 12, top + cell + 16), "something is drawn below the colour bar");
    }

    /// <summary>
    /// The method grid on known maps: 48x48 drawn 2x (96 pixels), columns at x = 90 + 110 i, the image, map and overlay
    /// rows at y = 104, 214 and 324; the figure is as wide as its columns and 440 pixels high.
    /// </summary>
    [Fact]
    public void MethodGridShowsImageJetMapAndOverlayAtTheirPlaces()
    {
        const int count = 3, scale = 2;
        var images = Enumerable.Range(0, count).SelectMany(_ => KnownImage()).ToArray();
        var maps = new SaliencyResult(Enumerable.Range(0, count).SelectMany(_ => KnownMap()).ToArray(), [3, 4, 5], Side) { Method = "Occlusion" };
        string path = Path.Combine(_directory, "method_grid_known.png");
        ExplanationFigures.SaveMethodGrid(path, images, Side, ["a", "b", "c"], maps, ClassNames, "Occlusion");

        using var bitmap = Decode(path);
        Assert.Equal((2 * 20 + 70 + count * 96 + (count - 1) * 14, 440), (bitmap.Width, bitmap.Height));
        for (int i = 0; i < count; i++)
        {
            int left = 90 + 110 * i;
            Assert.Equal(Rgb(Grey.GetColor(0.2)), Rgb(Block(bitmap, left, 104, scale, 10, 30)));
            AssertKnownMapTile(bitmap, left, 214, scale, $"map {i}");
            AssertKnownOverlayTile(bitmap, left, 324, scale, $"overlay {i}");
        }
    }

    /// <summary>The sanity rows: the image only in the trained row, every method's map in jet in each row.</summary>
    [Fact]
    public void SanityRowsShowJetMapsPerStep()
    {
        const int scale = 2, cell = Side * scale, gap = 10;
        var map = new SaliencyResult(KnownMap(), [3], Side);
        var methods = new[] { "a", "b" };
        var sanity = new SanityResult(methods.ToDictionary(m => m, _ => map),
            [new SanityStep("dense", 1, methods.ToDictionary(m => m, _ => map), methods.ToDictionary(m => m, _ => 0.1))], 3);
        string path = Path.Combine(_directory, "sanity_known.png");
        ExplanationFigures.SaveSanityRows(path, KnownImage(), Side, sanity, methods, ["A", "B"], 0, "Sanity");

        using var bitmap = Decode(path);
        // Layout: rows start at y = 20 + (int)(22 * 1.4) + 34 + (int)(2 * 13 * 1.4) + 8 = 128, columns at x = 170 + 106 c.
        int gridTop = 20 + (int)(22 * 1.4) + 34 + (int)(2 * 13 * 1.4) + 8;
        Assert.Equal(2 * 20 + (int)(22 * 1.4) + 34 + (int)(2 * 13 * 1.4) + 8 + 2 * (cell + gap), bitmap.Height);
        Assert.Equal(Rgb(Grey.GetColor(0.8)), Rgb(Block(bitmap, 170, gridTop, scale, 10, 10)));
        Assert.Equal(SKColors.White, Block(bitmap, 170, gridTop + cell + gap, scale, 10, 10));
        for (int row = 0; row < 2; row++)
            for (int m = 0; m < methods.Length; m++)
                AssertKnownMapTile(bitmap, 170 + (m + 1) * (cell + gap), gridTop + row * (cell + gap), scale, $"row {row}, method {m}");
    }
}
