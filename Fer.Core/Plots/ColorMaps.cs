using SkiaSharp;

namespace Fer.Core.Plots;

/// <summary>
/// Matplotlib's colour maps as functions of a value in 0..1 (clamped), so figures look the way users of
/// keras-vis / matplotlib expect: jet for saliency heatmaps, inferno as a perceptually uniform alternative,
/// gray and gray_r (0 = white, 1 = black) for images and layer outputs.
/// </summary>
public static class ColorMaps
{
    // Matplotlib's segment data for jet: (position, value) breakpoints per channel, linearly interpolated.
    private static readonly (double At, double Value)[] JetRed = [(0, 0), (0.35, 0), (0.66, 1), (0.89, 1), (1, 0.5)];
    private static readonly (double At, double Value)[] JetGreen = [(0, 0), (0.125, 0), (0.375, 1), (0.64, 1), (0.91, 0), (1, 0)];
    private static readonly (double At, double Value)[] JetBlue = [(0, 0.5), (0.11, 1), (0.34, 1), (0.65, 0), (1, 0)];

    // Matplotlib's inferno sampled at 0, 0.1, ..., 1; interpolated linearly between samples.
    private static readonly SKColor[] InfernoSamples =
    [
        new(0, 0, 4), new(22, 11, 57), new(66, 10, 104), new(106, 23, 110), new(147, 38, 103), new(188, 55, 84),
        new(221, 81, 58), new(243, 120, 25), new(252, 165, 10), new(246, 215, 70), new(252, 255, 164),
    ];

    public static SKColor Jet(double value)
    {
        double t = Clamp01(value);
        return new SKColor(ToByte(Piecewise(JetRed, t)), ToByte(Piecewise(JetGreen, t)), ToByte(Piecewise(JetBlue, t)));
    }

    public static SKColor Inferno(double value)
    {
        double position = Clamp01(value) * (InfernoSamples.Length - 1);
        int low = Math.Min((int)position, InfernoSamples.Length - 2);
        double f = position - low;
        SKColor a = InfernoSamples[low], b = InfernoSamples[low + 1];
        return new SKColor(Lerp(a.Red, b.Red, f), Lerp(a.Green, b.Green, f), Lerp(a.Blue, b.Blue, f));
    }

    public static SKColor Gray(double value)
    {
        byte v = ToByte(Clamp01(value));
        return new SKColor(v, v, v);
    }

    /// <summary>Reversed gray: 0 is white, 1 is black (matplotlib's gray_r).</summary>
    public static SKColor GrayReversed(double value) => Gray(1 - Clamp01(value));

    private static double Piecewise((double At, double Value)[] points, double t)
    {
        for (int i = 1; i < points.Length; i++)
        {
            if (t <= points[i].At)
            {
                var (x0, y0) = points[i - 1];
                var (x1, y1) = points[i];
                return x1 > x0 ? y0 + (y1 - y0) * (t - x0) / (x1 - x0) : y1;
            }
        }
        return points[^1].Value;
    }

    private static double Clamp01(double value) => double.IsNaN(value) ? 0 : Math.Clamp(value, 0, 1);

    private static byte ToByte(double unit) => (byte)Math.Round(Math.Clamp(unit, 0, 1) * 255);

    private static byte Lerp(byte a, byte b, double f) => (byte)Math.Round(a + (b - a) * f);
}
