using Fer.Core.Explain;
using Fer.Core.Plots;
using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Tests.Explain;

/// <summary>Writes the three figures and checks they are decodable PNGs of a plausible size. Set FER_FIGURES_DIR to
/// keep them for looking at.</summary>
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
}
