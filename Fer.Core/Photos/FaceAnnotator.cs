using System.Globalization;
using OpenCvSharp;

namespace Fer.Core.Photos;

/// <summary>A classified face: its box and the ensemble's probabilities, in class order.</summary>
public sealed record ClassifiedFace(FaceBox Box, int Label, float Confidence, float[] Probabilities);

/// <summary>
/// Draws results onto the colour copy of an image: per face a box in the predicted class's colour, the label and
/// confidence above it and, below it, a small bar chart of every class's probability (one bar a class, the
/// class's initial under it). Sizes follow the box, so a face of 40 pixels and one of 400 are both readable.
/// </summary>
public static class FaceAnnotator
{
    /// <summary>One colour per class (BGR), Angry red ... Neutral gray; cycles for more classes.</summary>
    public static readonly Scalar[] ClassColors =
    [
        new(40, 39, 214), new(44, 160, 44), new(189, 103, 148), new(14, 201, 255), new(180, 119, 31), new(194, 119, 227), new(150, 150, 150),
    ];

    public static Scalar ColorOf(int label) => ClassColors[((label % ClassColors.Length) + ClassColors.Length) % ClassColors.Length];

    /// <summary>Draws onto <paramref name="color"/>, whose pixels are <paramref name="scale"/> times the boxes' coordinates.</summary>
    public static void Draw(Mat color, double scale, IReadOnlyList<ClassifiedFace> faces, IReadOnlyList<string> classNames)
    {
        foreach (var face in faces)
        {
            var b = face.Box;
            var rect = new Rect((int)Math.Round(b.X * scale), (int)Math.Round(b.Y * scale), Math.Max(1, (int)Math.Round(b.W * scale)), Math.Max(1, (int)Math.Round(b.H * scale)));
            var colour = ColorOf(face.Label);
            int thickness = Math.Max(2, rect.Width / 60);
            Cv2.Rectangle(color, rect, colour, thickness);

            // Label and confidence on a filled strip above the box (inside it when the box touches the top).
            double fontScale = Math.Clamp(rect.Width / 220.0, 0.4, 3.0);
            int fontThickness = Math.Max(1, (int)Math.Round(fontScale * 1.6));
            string text = $"{classNames[face.Label]} {face.Confidence.ToString("0.00", CultureInfo.InvariantCulture)}";
            var size = Cv2.GetTextSize(text, HersheyFonts.HersheySimplex, fontScale, fontThickness, out int baseline);
            int top = rect.Y - size.Height - baseline - 2 * thickness;
            if (top < 0) top = rect.Y;
            var strip = new Rect(rect.X, top, Math.Max(size.Width + 2 * thickness, 1), size.Height + baseline + 2 * thickness);
            Cv2.Rectangle(color, strip, colour, -1);
            Cv2.PutText(color, text, new Point(strip.X + thickness, strip.Y + size.Height + thickness), HersheyFonts.HersheySimplex, fontScale,
                Scalar.Black, fontThickness, LineTypes.AntiAlias);

            DrawBars(color, rect, face, classNames, thickness);
        }
    }

    private static void DrawBars(Mat color, Rect box, ClassifiedFace face, IReadOnlyList<string> classNames, int thickness)
    {
        int n = face.Probabilities.Length;
        int width = Math.Max(box.Width, 7 * 12);
        int barWidth = Math.Max(4, width / n);
        width = barWidth * n;
        int height = Math.Max(24, box.Height / 3);
        double letterScale = Math.Clamp(barWidth / 22.0, 0.3, 2.0);
        var letterSize = Cv2.GetTextSize("M", HersheyFonts.HersheySimplex, letterScale, 1, out int letterBase);
        int panelHeight = height + letterSize.Height + letterBase + 4;
        int x0 = box.X, y0 = box.Y + box.Height + thickness;
        if (y0 + panelHeight > color.Height) y0 = Math.Max(0, box.Y + box.Height - panelHeight); // inside the box at the bottom edge
        if (x0 + width > color.Width) x0 = Math.Max(0, color.Width - width);
        var panel = new Rect(x0, y0, Math.Min(width, color.Width - x0), Math.Min(panelHeight, color.Height - y0));
        if (panel.Width <= 0 || panel.Height <= 0) return;
        using (var roi = new Mat(color, panel))
        using (var dark = new Mat(roi.Size(), roi.Type(), new Scalar(30, 30, 30)))
            Cv2.AddWeighted(roi, 0.35, dark, 0.65, 0, roi);
        for (int k = 0; k < n; k++)
        {
            int barHeight = (int)Math.Round(Math.Clamp(face.Probabilities[k], 0f, 1f) * (height - 2));
            int bx = x0 + k * barWidth + 1;
            if (barHeight > 0)
                Cv2.Rectangle(color, new Rect(bx, y0 + height - barHeight, Math.Max(1, barWidth - 2), barHeight), ColorOf(k), -1);
            string letter = k < classNames.Count && classNames[k].Length > 0 ? classNames[k][..1] : "?";
            Cv2.PutText(color, letter, new Point(bx, y0 + height + letterSize.Height + 2), HersheyFonts.HersheySimplex, letterScale,
                k == face.Label ? ColorOf(k) : new Scalar(230, 230, 230), 1, LineTypes.AntiAlias);
        }
    }

    /// <summary>A face crop beside its Grad-CAM overlay (jet colours, half transparent), each <paramref name="display"/> pixels square.</summary>
    public static Mat ExplanationPanel(ReadOnlySpan<byte> crop, int side, ReadOnlySpan<float> cam, int display = 192)
    {
        using var gray = Mat.FromPixelData(side, side, MatType.CV_8UC1, crop.ToArray());
        using var big = new Mat();
        Cv2.Resize(gray, big, new Size(display, display), interpolation: InterpolationFlags.Cubic);
        using var bigColor = new Mat();
        Cv2.CvtColor(big, bigColor, ColorConversionCodes.GRAY2BGR);
        var heat = cam.ToArray().Select(v => (byte)Math.Clamp((int)Math.Round(v * 255), 0, 255)).ToArray();
        using var heatMat = Mat.FromPixelData(side, side, MatType.CV_8UC1, heat);
        using var heatBig = new Mat();
        Cv2.Resize(heatMat, heatBig, new Size(display, display), interpolation: InterpolationFlags.Linear);
        using var jet = new Mat();
        Cv2.ApplyColorMap(heatBig, jet, ColormapTypes.Jet);
        using var overlay = new Mat();
        Cv2.AddWeighted(bigColor, 0.5, jet, 0.5, 0, overlay);
        var panel = new Mat();
        Cv2.HConcat([bigColor, overlay], panel);
        return panel;
    }
}
