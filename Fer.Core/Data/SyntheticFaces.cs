namespace Fer.Core.Data;

/// <param name="ClassProportions">Relative class frequencies (7 values); null: uniform.</param>
/// <param name="Noise">Pixel noise standard deviation as a fraction of 255.</param>
public sealed record SyntheticFaceOptions(int Count, int Seed, int Side = 48, double[]? ClassProportions = null, double Noise = 0.06);

/// <summary>One synthetic face: its pixels, label and evidence mask (1 on the expression's features, 0 elsewhere).</summary>
public sealed record SyntheticFace(byte[] Pixels, int Label, float[] Evidence);

/// <summary>
/// FER-like synthetic faces, so every flow runs on a fresh machine without a download. The 7 expressions differ
/// in mouth curvature, width and openness, brow angle and height, and eye openness, with per-image jitter wide
/// enough that some pairs (Fear/Surprise, Sad/Angry/Neutral) are confusable. Each face has a random position,
/// scale, small rotation, lighting gradient, background and pixel noise. Image <c>id</c> of a seed depends on
/// (seed, id) alone, so any image and its evidence mask can be recreated.
/// </summary>
public static class SyntheticFaces
{
    /// <summary>Per-class shape: mouth curvature (+ smile), width, openness; brow raise, inner-end tilt; eye openness.</summary>
    private sealed record Expression(double Curve, double MouthWidth, double MouthOpen, double BrowRaise, double BrowTilt, double EyeOpen, double Asymmetry = 0);

    // Angry, Disgust, Fear, Happy, Sad, Surprise, Neutral (FER2013 label order).
    private static readonly Expression[] Expressions =
    [
        new(Curve: -0.10, MouthWidth: 0.42, MouthOpen: 0.04, BrowRaise: -0.07, BrowTilt: 0.16, EyeOpen: 0.75),
        new(Curve: -0.14, MouthWidth: 0.40, MouthOpen: 0.07, BrowRaise: -0.05, BrowTilt: 0.07, EyeOpen: 0.55, Asymmetry: 0.12),
        new(Curve: -0.08, MouthWidth: 0.50, MouthOpen: 0.18, BrowRaise: 0.09, BrowTilt: -0.10, EyeOpen: 1.35),
        new(Curve: 0.22, MouthWidth: 0.56, MouthOpen: 0.10, BrowRaise: 0.01, BrowTilt: 0.0, EyeOpen: 0.70),
        new(Curve: -0.18, MouthWidth: 0.44, MouthOpen: 0.0, BrowRaise: 0.02, BrowTilt: -0.15, EyeOpen: 0.80),
        new(Curve: 0.0, MouthWidth: 0.26, MouthOpen: 0.34, BrowRaise: 0.13, BrowTilt: 0.0, EyeOpen: 1.55),
        new(Curve: 0.0, MouthWidth: 0.46, MouthOpen: 0.0, BrowRaise: 0.0, BrowTilt: 0.0, EyeOpen: 1.0),
    ];

    public static FaceSet Generate(SyntheticFaceOptions options)
    {
        if (options.Count < 0) throw new ArgumentOutOfRangeException(nameof(options), "count must be >= 0");
        ValidateProportions(options.ClassProportions);
        int n = options.Count, p = options.Side * options.Side;
        var pixels = new byte[(long)n * p];
        var labels = new int[n];
        Parallel.For(0, n, i =>
        {
            var face = Render(options.Seed, i, options.Side, options.ClassProportions, options.Noise);
            labels[i] = face.Label;
            face.Pixels.CopyTo(pixels, (long)i * p);
        });
        var ids = Enumerable.Range(0, n).Select(i => (long)i).ToArray();
        return new FaceSet(options.Side, FaceSet.Fer2013Classes, ids, labels, (long[])ids.Clone(), new bool[n],
            new FaceUsage[n], pixels);
    }

    /// <summary>Evidence masks (N*Side*Side) of rows generated with this seed; mirrored rows get mirrored masks.</summary>
    public static float[] EvidenceMasks(FaceSet faces, int seed, double[]? classProportions = null, double noise = 0.06)
    {
        int p = faces.PixelsPerImage;
        var masks = new float[(long)faces.Count * p];
        Parallel.For(0, faces.Count, i =>
        {
            var mask = Render(seed, faces.SourceIds[i], faces.Side, classProportions, noise).Evidence;
            if (faces.Flipped[i])
                for (int r = 0; r < faces.Side; r++) Array.Reverse(mask, r * faces.Side, faces.Side);
            mask.CopyTo(masks, (long)i * p);
        });
        return masks;
    }

    public static SyntheticFace Render(int seed, long id, int side = 48, double[]? classProportions = null, double noise = 0.06)
    {
        var rng = new Random(StableSeed(seed, id));
        int label = DrawLabel(rng, classProportions);
        var e = Expressions[label];
        double J(double spread) => (rng.NextDouble() * 2 - 1) * spread;

        // Per-image jitter of the expression (wide enough to make neighbouring classes overlap).
        double curve = e.Curve + J(0.07), mouthWidth = e.MouthWidth + J(0.07), mouthOpen = Math.Max(0, e.MouthOpen + J(0.06));
        double browRaise = e.BrowRaise + J(0.05), browTilt = e.BrowTilt + J(0.06), eyeOpen = Math.Max(0.3, e.EyeOpen + J(0.25));
        double asymmetry = e.Asymmetry + J(0.03);

        // Pose and photometry.
        double scale = side * (0.40 + J(0.04)), aspect = 1.22 + J(0.06);
        double cx = side / 2.0 + J(side * 0.07), cy = side / 2.0 + J(side * 0.06) + side * 0.03;
        double angle = J(12) * Math.PI / 180, cos = Math.Cos(angle), sin = Math.Sin(angle);
        double background = 40 + rng.NextDouble() * 90, skin = 150 + rng.NextDouble() * 70;
        double lightAngle = rng.NextDouble() * 2 * Math.PI, lightStrength = rng.NextDouble() * 40;
        double ink = 0.65 + rng.NextDouble() * 0.3;          // how dark features are relative to the skin
        double pixel = 1.0 / scale;                           // one pixel in face units, for anti-aliasing

        var pixels = new byte[side * side];
        var evidence = new float[side * side];
        for (int y = 0; y < side; y++)
        {
            for (int x = 0; x < side; x++)
            {
                // Image -> face coordinates: u across (-1..1 at the cheeks), v down (-1 forehead .. 1 chin).
                double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
                double u = (cos * dx + sin * dy) / scale, v = (-sin * dx + cos * dy) / (scale * aspect);

                double faceCover = Cover(Math.Sqrt(u * u + v * v) - 1, pixel);
                double shade = lightStrength * (Math.Cos(lightAngle) * dx + Math.Sin(lightAngle) * dy) / side;
                double value = background + shade * 0.5;
                value = value * (1 - faceCover) + (skin + shade) * faceCover;

                double dark = 0, near = double.MaxValue;
                for (double sign = -1; sign <= 1; sign += 2)
                {
                    // Eye: an ellipse whose height is the eye's openness, with a dark pupil.
                    double eu = u - sign * 0.36, ev = v + 0.16;
                    double eyeH = 0.075 * eyeOpen, eyeW = 0.15;
                    double eyeD = (Math.Sqrt(eu * eu / (eyeW * eyeW) + ev * ev / (eyeH * eyeH)) - 1) * Math.Min(eyeW, eyeH);
                    dark = Math.Max(dark, 0.55 * Cover(eyeD, pixel));
                    dark = Math.Max(dark, Cover(Math.Sqrt(eu * eu + ev * ev) - Math.Min(0.06, eyeH * 0.9), pixel));
                    near = Math.Min(near, eyeD);

                    // Brow: a thick segment; tilt lowers (+) or raises (-) its inner end.
                    double by = -0.42 - browRaise;
                    double browD = Segment(u, v, sign * 0.16, by + browTilt, sign * 0.52, by - browTilt * 0.3) - 0.04;
                    dark = Math.Max(dark, 0.9 * Cover(browD, pixel));
                    near = Math.Min(near, browD);
                }

                // Nose: a faint vertical stroke and nostrils.
                dark = Math.Max(dark, 0.25 * Cover(Segment(u, v, 0, -0.05, 0.02, 0.18) - 0.025, pixel));

                // Mouth: a curved lip line; an open mouth is a dark region between the lips.
                double mv = v - 0.52, w = Math.Max(0.12, mouthWidth);
                double t = Math.Clamp(u / w, -1, 1);
                double centre = curve * (0.5 - t * t) * 0.9 + asymmetry * t;
                double open = mouthOpen * (1 - t * t) * 0.5;
                double lineD = Math.Abs(u) <= w
                    ? Math.Max(Math.Abs(mv - centre) - open, 0) - 0.025
                    : Math.Sqrt((Math.Abs(u) - w) * (Math.Abs(u) - w) + (mv - centre) * (mv - centre)) - 0.025;
                dark = Math.Max(dark, Cover(lineD, pixel));
                near = Math.Min(near, lineD);

                value -= (value - 15) * dark * ink * faceCover;
                value += Gaussian(rng) * noise * 255;
                pixels[y * side + x] = (byte)Math.Clamp(Math.Round(value), 0, 255);
                evidence[y * side + x] = near < 0.09 && faceCover > 0.5 ? 1f : 0f;
            }
        }
        return new SyntheticFace(pixels, label, evidence);
    }

    /// <summary>
    /// A per-image seed from (seed, id) that is the same in every process (HashCode.Combine is randomised per
    /// process, which would make the "same" data differ between runs): SplitMix64 finalisation.
    /// </summary>
    private static int StableSeed(int seed, long id)
    {
        ulong z = unchecked((ulong)seed * 0x9E3779B97F4A7C15UL + (ulong)id + 0x5EEDUL);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        return (int)((z ^ (z >> 31)) & 0x7FFFFFFF);
    }

    private static int DrawLabel(Random rng, double[]? proportions)
    {
        if (proportions is null) return rng.Next(Expressions.Length);
        ValidateProportions(proportions);
        double r = rng.NextDouble() * proportions.Sum();
        for (int c = 0; c < proportions.Length; c++)
        {
            r -= proportions[c];
            if (r < 0) return c;
        }
        return proportions.Length - 1;
    }

    private static void ValidateProportions(double[]? proportions)
    {
        if (proportions is not null && (proportions.Length != Expressions.Length || proportions.Any(p => !(p >= 0)) || proportions.Sum() <= 0))
            throw new ArgumentException($"class proportions need {Expressions.Length} non-negative values with a positive sum");
    }

    /// <summary>Coverage of a pixel by a shape at signed distance d (negative inside), anti-aliased over one pixel.</summary>
    private static double Cover(double d, double pixel) => Math.Clamp(0.5 - d / pixel, 0, 1);

    private static double Segment(double px, double py, double ax, double ay, double bx, double by)
    {
        double vx = bx - ax, vy = by - ay, wx = px - ax, wy = py - ay;
        double t = Math.Clamp((wx * vx + wy * vy) / (vx * vx + vy * vy), 0, 1);
        double dx = wx - t * vx, dy = wy - t * vy;
        return Math.Sqrt(dx * dx + dy * dy);
    }

    private static double Gaussian(Random rng) =>
        Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
}
