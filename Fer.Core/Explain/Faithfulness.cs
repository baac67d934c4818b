using Fer.Core.Models;
using TorchSharp;
using static TorchSharp.torch;
using static Fer.Core.Explain.ExplainSupport;

namespace Fer.Core.Explain;

/// <summary>How the faithfulness curves are sampled.</summary>
/// <param name="Steps">Deletion and insertion are evaluated at 0, 1/Steps, ..., 1 of the pixels.</param>
/// <param name="RoadFractions">The shares of pixels ROAD removes (default 0.1, 0.3, 0.5, 0.7, 0.9).</param>
/// <param name="ImputerNoise">Standard deviation (0..1 pixel units) of the noise the ROAD imputer adds.</param>
/// <param name="Seed">Seed of the random-map baseline and of the imputer's noise.</param>
public sealed record FaithfulnessOptions(int Steps = 10, IReadOnlyList<double>? RoadFractions = null, double ImputerNoise = 0.01, long Seed = 0)
{
    public IReadOnlyList<double> Fractions => RoadFractions ?? [0.1, 0.3, 0.5, 0.7, 0.9];
}

/// <summary>The mean (over images) softmax probability of the explained class at each fraction, and the curve's
/// area by the trapezoid rule over the fractions' span (for ROAD, whose fractions do not reach 0 and 1, the mean).</summary>
public sealed record FaithfulnessCurve(double[] Fractions, double[] MeanProbability)
{
    public double Area
    {
        get
        {
            if (Fractions.Length == 1) return MeanProbability[0];
            double area = 0;
            for (int i = 1; i < Fractions.Length; i++)
                area += (Fractions[i] - Fractions[i - 1]) * (MeanProbability[i] + MeanProbability[i - 1]) / 2;
            return area / (Fractions[^1] - Fractions[0]);
        }
    }
}

/// <summary>
/// One method's faithfulness on a set of images. Deletion: the most relevant pixels are set to the image's mean
/// first (lower area = more faithful); insertion: starting from the image blurred, the most relevant pixels are put
/// back first (higher area = more faithful). ROAD (Rong et al. 2022): a share of the pixels is removed, most
/// relevant first (MoRF, lower is better) or least relevant first (LeRF, higher is better), and filled by a noisy
/// linear imputer, so the filled image stays close to the data instead of showing the mask's shape.
/// </summary>
public sealed record FaithfulnessResult(string Method, FaithfulnessCurve Deletion, FaithfulnessCurve Insertion,
    FaithfulnessCurve RoadMorf, FaithfulnessCurve RoadLerf)
{
    public double DeletionAuc => Deletion.Area;
    public double InsertionAuc => Insertion.Area;
    public double RoadMorfScore => RoadMorf.Area;
    public double RoadLerfScore => RoadLerf.Area;

    /// <summary>One number to rank methods by: (insertion - deletion) + (ROAD LeRF - ROAD MoRF); a map no better
    /// than chance scores about what the random-map baseline does.</summary>
    public double Score => InsertionAuc - DeletionAuc + RoadLerfScore - RoadMorfScore;
}

/// <summary>Deletion, insertion and ROAD curves for a method's maps, and for random maps as the baseline.</summary>
public static class Faithfulness
{
    /// <summary>The curves of <paramref name="maps"/> (which explain their own target classes) on <paramref name="images"/>.</summary>
    public static FaithfulnessResult Measure(FerModel model, Tensor images, SaliencyResult maps, FaithfulnessOptions options)
    {
        var (count, side) = CheckImages(model, images, nameof(images));
        if (maps.Count != count || maps.Side != side)
            throw new ArgumentException($"{maps.Count} maps of {maps.Side} px for {count} images of {side} px", nameof(maps));
        var orders = Enumerable.Range(0, count).Select(i => RankPixels(maps.Map(i))).ToArray();
        return Curves(model, images, orders, maps.TargetClasses, maps.Method, options);
    }

    /// <summary>The same curves for pixel orders drawn at random (from the seed and the image index alone).</summary>
    public static FaithfulnessResult MeasureRandom(FerModel model, Tensor images, int[] targetClasses, FaithfulnessOptions options)
    {
        var (count, side) = CheckImages(model, images, nameof(images));
        CheckTargets(model, targetClasses, count, nameof(targetClasses));
        int pixels = side * side;
        var orders = new int[count][];
        for (int i = 0; i < count; i++)
        {
            var order = Enumerable.Range(0, pixels).ToArray();
            new Random(MixToInt(options.Seed, i, salt: 11)).Shuffle(order);
            orders[i] = order;
        }
        return Curves(model, images, orders, targetClasses, "random map", options);
    }

    private static FaithfulnessResult Curves(FerModel model, Tensor images, int[][] orders, int[] targets, string method,
        FaithfulnessOptions o)
    {
        if (o.Steps < 1) throw new ArgumentOutOfRangeException(nameof(o), "Steps must be at least 1");
        if (o.Fractions.Count == 0 || o.Fractions.Any(f => !(f > 0 && f < 1)))
            throw new ArgumentOutOfRangeException(nameof(o), "ROAD fractions must be in (0, 1)");
        int count = orders.Length, side = (int)images.shape[2], pixels = side * side;
        var original = ToFloats(images);
        float[] blurred;
        using (torch.NewDisposeScope()) blurred = ToFloats(Attributions.Baseline(images.detach().to(ScalarType.Float32).cpu(), IgBaseline.Blurred));

        var curveFractions = Enumerable.Range(0, o.Steps + 1).Select(k => (double)k / o.Steps).ToArray();
        var roadFractions = o.Fractions.ToArray();
        int perImage = 2 * curveFractions.Length + 2 * roadFractions.Length;
        var batch = new float[count * perImage * pixels];
        var rowTargets = new int[count * perImage];
        int curveRows = 2 * curveFractions.Length;
        for (int i = 0; i < count; i++)
        {
            var source = original.AsSpan(i * pixels, pixels);
            var blur = blurred.AsSpan(i * pixels, pixels);
            float mean = Mean(source);
            var order = orders[i];
            int row = i * perImage;
            foreach (var f in curveFractions)
            {
                int n = (int)Math.Round(f * pixels);
                var deleted = batch.AsSpan(row++ * pixels, pixels);
                source.CopyTo(deleted);
                for (int k = 0; k < n; k++) deleted[order[k]] = mean;
                var inserted = batch.AsSpan(row++ * pixels, pixels);
                blur.CopyTo(inserted);
                for (int k = 0; k < n; k++) inserted[order[k]] = source[order[k]];
            }
            Array.Fill(rowTargets, targets[i], i * perImage, perImage);
        }
        // ROAD's imputations are most of the cost: one work item per (image, share, MoRF/LeRF) on every core. Each
        // writes only its own row with its own seeded noise, so the batch is the same to the bit on any number of threads.
        int roadRows = 2 * roadFractions.Length;
        Parallel.For(0, count * roadRows, item =>
        {
            int i = item / roadRows, r = item % roadRows / 2, lerf = item % 2;
            var order = orders[i];
            int n = (int)Math.Round(roadFractions[r] * pixels);
            var removed = new bool[pixels];
            for (int k = 0; k < n; k++) removed[lerf == 0 ? order[k] : order[pixels - 1 - k]] = true;
            var target = batch.AsSpan((i * perImage + curveRows + 2 * r + lerf) * pixels, pixels);
            original.AsSpan(i * pixels, pixels).CopyTo(target);
            ImputeNoisyLinear(target, side, removed, o.ImputerNoise, new Random(MixToInt(o.Seed, i, salt: 100 + 2 * r + lerf)));
        });

        float[] probabilities;
        using (var scope = torch.NewDisposeScope())
        using (new EvalModeScope(model))
        {
            var tensor = torch.tensor(batch, [count * perImage, 1, side, side]).to(images.dtype);
            probabilities = TargetProbabilities(model, tensor, rowTargets);
        }

        double[] Average(Func<int, int> rowOf, int points)
        {
            var mean = new double[points];
            for (int p = 0; p < points; p++)
            {
                double sum = 0;
                for (int i = 0; i < count; i++) sum += probabilities[i * perImage + rowOf(p)];
                mean[p] = sum / count;
            }
            return mean;
        }
        int curves = curveFractions.Length;
        return new FaithfulnessResult(method,
            new FaithfulnessCurve(curveFractions, Average(p => 2 * p, curves)),
            new FaithfulnessCurve(curveFractions, Average(p => 2 * p + 1, curves)),
            new FaithfulnessCurve(roadFractions, Average(p => 2 * curves + 2 * p, roadFractions.Length)),
            new FaithfulnessCurve(roadFractions, Average(p => 2 * curves + 2 * p + 1, roadFractions.Length)));
    }

    /// <summary>
    /// ROAD's noisy linear imputer: every removed pixel becomes the weighted mean of its 8 neighbours (weight 1/6 for
    /// the 4 direct ones, 1/12 for the diagonal ones, renormalised at the border), solved jointly for all removed pixels
    /// (a sparse linear system, by successive over-relaxation to 1e-5) with the kept pixels as boundary values, plus
    /// Gaussian noise of standard deviation <paramref name="noise"/>, clamped to 0..1. With nothing kept, the removed
    /// pixels become 0.5.
    /// </summary>
    public static void ImputeNoisyLinear(Span<float> image, int side, bool[] removed, double noise, Random random)
    {
        int pixels = side * side;
        if (image.Length != pixels || removed.Length != pixels) throw new ArgumentException("image and mask must hold side*side values");
        double keptSum = 0;
        int kept = 0;
        for (int p = 0; p < pixels; p++) if (!removed[p]) { keptSum += image[p]; kept++; }
        if (kept == 0) { image.Fill(0.5f); return; }
        var values = new double[pixels];
        for (int p = 0; p < pixels; p++) values[p] = removed[p] ? keptSum / kept : image[p];
        var unknown = Enumerable.Range(0, pixels).Where(p => removed[p]).ToArray();
        // Hot path (faithfulness imputes every removed share of every map): each unknown pixel's neighbours and
        // weights are listed once, then the sweeps only index arrays. The sums run in the same neighbour order as a
        // direct 3x3 scan, so the result is the same to the bit.
        var firstNeighbour = new int[unknown.Length + 1];
        var neighbours = new int[unknown.Length * 8];
        var weights = new double[unknown.Length * 8];
        var weightSums = new double[unknown.Length];
        int listed = 0;
        for (int u = 0; u < unknown.Length; u++)
        {
            int r = unknown[u] / side, c = unknown[u] % side;
            firstNeighbour[u] = listed;
            double weight = 0;
            for (int dr = -1; dr <= 1; dr++)
            {
                int rr = r + dr;
                if (rr < 0 || rr >= side) continue;
                for (int dc = -1; dc <= 1; dc++)
                {
                    int cc = c + dc;
                    if ((dr == 0 && dc == 0) || cc < 0 || cc >= side) continue;
                    double w = dr == 0 || dc == 0 ? 1.0 / 6 : 1.0 / 12;
                    neighbours[listed] = rr * side + cc;
                    weights[listed++] = w;
                    weight += w;
                }
            }
            weightSums[u] = weight;
        }
        firstNeighbour[unknown.Length] = listed;
        const double omega = 1.8;
        for (int iteration = 0; iteration < 2000; iteration++)
        {
            double change = 0;
            for (int u = 0; u < unknown.Length; u++)
            {
                double sum = 0;
                for (int k = firstNeighbour[u]; k < firstNeighbour[u + 1]; k++) sum += weights[k] * values[neighbours[k]];
                int p = unknown[u];
                double next = values[p] + omega * (sum / weightSums[u] - values[p]);
                change = Math.Max(change, Math.Abs(next - values[p]));
                values[p] = next;
            }
            if (change < 1e-5) break;
        }
        foreach (var p in unknown)
            image[p] = (float)Math.Clamp(values[p] + noise * Gaussian(random), 0, 1);
    }

    /// <summary>
    /// The synthetic faces' check: the mean over images of (map mass inside the evidence region / total mass) /
    /// (region area / image area). 1 is what a map spread evenly over the face scores; higher puts more of the map on
    /// the pixels that carry the expression.
    /// </summary>
    public static double EvidenceRatio(SaliencyResult maps, float[] evidence)
    {
        int p = maps.Side * maps.Side, n = maps.Count;
        if (evidence.Length != n * p) throw new ArgumentException($"{evidence.Length} evidence values for {n} maps of {p} pixels", nameof(evidence));
        double sum = 0;
        for (int i = 0; i < n; i++)
        {
            double inside = 0, total = 0, area = 0;
            for (int k = 0; k < p; k++)
            {
                total += maps.Maps[i * p + k];
                inside += maps.Maps[i * p + k] * evidence[i * p + k];
                area += evidence[i * p + k];
            }
            sum += total == 0 || area == 0 ? 0 : inside / total / (area / p);
        }
        return sum / n;
    }

    private static float Mean(ReadOnlySpan<float> values)
    {
        double sum = 0;
        foreach (var v in values) sum += v;
        return (float)(sum / values.Length);
    }

    private static double Gaussian(Random random)
    {
        double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
