using Fer.Core.Data;
using Fer.Core.Ensemble;
using Fer.Core.Models;
using Fer.Core.Plots;
using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Tests.Ensemble;

public class EnsembleWeightsTests
{
    /// <summary>Probabilities of a member that puts <paramref name="confidence"/> on the true class with probability <paramref name="skill"/>.</summary>
    private static float[] Member(int[] labels, int classes, double skill, double confidence, int seed)
    {
        var random = new Random(seed);
        var p = new float[labels.Length * classes];
        for (int i = 0; i < labels.Length; i++)
        {
            int guess = random.NextDouble() < skill ? labels[i] : random.Next(classes);
            for (int c = 0; c < classes; c++) p[i * classes + c] = (float)((1 - confidence) / (classes - 1));
            p[i * classes + guess] = (float)confidence;
        }
        return p;
    }

    private static int[] Labels(int n, int classes, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => random.Next(classes)).ToArray();
    }

    [Fact]
    public void AClearlyBetterMemberGetsMostOfTheWeight()
    {
        var labels = Labels(2000, 7, 1);
        var fit = EnsembleWeights.Fit([Member(labels, 7, 0.9, 0.8, 2), Member(labels, 7, 0.3, 0.8, 3)], labels, 7);
        Assert.True(fit.Weights[0] > 0.8, string.Join(", ", fit.Weights));
        Assert.Equal(1.0, fit.Weights.Sum(), 9);
        Assert.All(fit.Weights, w => Assert.True(w >= 0));
        Assert.True(fit.ValidNll <= fit.EqualWeightNll);
        Assert.False(fit.FellBackToBestMember);
    }

    [Fact]
    public void IdenticalMembersShareTheWeightAndNoiseGetsNone()
    {
        var labels = Labels(1500, 7, 4);
        var good = Member(labels, 7, 0.7, 0.6, 5);
        var noise = new float[good.Length];
        var random = new Random(6);
        for (int i = 0; i < labels.Length; i++)
        {
            var row = Enumerable.Range(0, 7).Select(_ => random.NextDouble() + 0.01).ToArray();
            for (int c = 0; c < 7; c++) noise[i * 7 + c] = (float)(row[c] / row.Sum());
        }
        var fit = EnsembleWeights.Fit([good, (float[])good.Clone(), noise], labels, 7);
        Assert.Equal(fit.FittedWeights[0], fit.FittedWeights[1], 3);
        Assert.True(fit.FittedWeights[2] < 0.05, string.Join(", ", fit.FittedWeights));
        var single = EnsembleWeights.Fit([good], labels, 7);
        Assert.Equal([1.0], single.Weights);
        Assert.Equal(single.ValidAccuracy, fit.ValidAccuracy, 9);
    }

    [Fact]
    public void FallsBackToTheBestMemberWhenTheNllOptimumIsLessAccurate()
    {
        // Member A: right on 90% of rows but, when wrong, gives the true class ~0 (catastrophic log-loss).
        // Member B: right on 70%, always hedged. The NLL optimum mixes in B heavily and loses A's accuracy.
        int n = 1000;
        var labels = Enumerable.Range(0, n).Select(i => i % 2).ToArray();
        var a = new float[n * 2];
        var b = new float[n * 2];
        for (int i = 0; i < n; i++)
        {
            bool aRight = i % 10 != 0, bRight = i % 10 < 7 && i % 10 != 0 || i % 10 == 0;
            a[i * 2 + labels[i]] = aRight ? 0.51f : 1e-9f;
            a[i * 2 + 1 - labels[i]] = aRight ? 0.49f : 1f - 1e-9f;
            b[i * 2 + labels[i]] = bRight ? 0.99f : 0.01f;
            b[i * 2 + 1 - labels[i]] = bRight ? 0.01f : 0.99f;
        }
        var fit = EnsembleWeights.Fit([a, b], labels, 2);
        Assert.True(fit.FellBackToBestMember, $"weights {string.Join(", ", fit.Weights)} accuracy {fit.ValidAccuracy} best {fit.BestMemberAccuracy}");
        Assert.Equal([1.0, 0.0], fit.Weights);
        Assert.Equal(0.9, fit.ValidAccuracy, 9);
        Assert.Contains("best member", fit.Explanation);
    }

    /// <summary>The combination used is the one with the best held-out accuracy over the folds (the pooled score of each).</summary>
    [Fact]
    public void TheCombinationUsedIsTheBestOnHeldOutRows()
    {
        for (int seed = 0; seed < 8; seed++)
        {
            var labels = Labels(400, 7, seed);
            var members = Enumerable.Range(0, 3).Select(k => Member(labels, 7, 0.3 + 0.2 * k, 0.3 + 0.2 * ((k + seed) % 3), seed * 10 + k)).ToList();
            var fit = EnsembleWeights.Fit(members, labels, 7);
            Assert.Equal(5, fit.Folds);
            Assert.Equal(fit.HeldOut.Values.Max(h => h.Accuracy), fit.HeldOut[fit.Choice].Accuracy);
            Assert.Equal(1.0, fit.Weights.Sum(), 9);
            Assert.Contains("held-out accuracy over 5 folds", fit.Explanation);
        }
    }

    /// <summary>
    /// The quickstart's case: the NLL fit gives one member all the weight, while equal weights are more accurate. Member
    /// A is right on 3 rows in 4 and sure when right, mildly wrong otherwise; B is right on the other rows' share and
    /// hedged when right, nearly sure of a wrong class otherwise (which the log-loss punishes). The NLL optimum is A alone
    /// (accuracy 0.75); equal weights get every row right. Cross-validation sees it and uses equal weights.
    /// </summary>
    [Fact]
    public void EqualWeightsAreUsedWhenTheFitDoesNotBeatThemOnHeldOutRows()
    {
        int n = 200;
        var labels = Enumerable.Range(0, n).Select(i => i % 2).ToArray();
        var a = new float[n * 2];
        var b = new float[n * 2];
        for (int i = 0; i < n; i++)
        {
            int t = labels[i];
            (float pa, float pb) = (i % 4) switch { 0 => (0.45f, 0.6f), 1 => (0.99f, 0.02f), _ => (0.99f, 0.6f) };
            a[i * 2 + t] = pa; a[i * 2 + 1 - t] = 1 - pa;
            b[i * 2 + t] = pb; b[i * 2 + 1 - t] = 1 - pb;
        }
        var fit = EnsembleWeights.Fit([a, b], labels, 2);
        Assert.True(fit.FittedWeights[0] > 0.95, string.Join(", ", fit.FittedWeights));
        Assert.Equal(EnsembleChoice.Equal, fit.Choice);
        Assert.Equal([0.5, 0.5], fit.Weights);
        Assert.Equal(1.0, fit.ValidAccuracy);
        Assert.Equal(1.0, fit.HeldOut[EnsembleChoice.Equal].Accuracy);
        Assert.True(fit.HeldOut[EnsembleChoice.Fitted].Accuracy < 0.8, fit.Explanation);
        Assert.Contains("does not beat equal weights on held-out rows, so equal weights are used", fit.Explanation);
    }

    [Fact]
    public void ASetTooSmallToFoldKeepsTheFitUnlessTheBestMemberIsMoreAccurate()
    {
        var labels = Labels(15, 7, 3);
        var fit = EnsembleWeights.Fit([Member(labels, 7, 0.8, 0.7, 1), Member(labels, 7, 0.5, 0.7, 2)], labels, 7);
        Assert.Equal(0, fit.Folds);
        Assert.Empty(fit.HeldOut);
        Assert.True(fit.ValidAccuracy >= fit.BestMemberAccuracy);
    }

    [Fact]
    public void CombineAndArgMaxAndInputChecks()
    {
        var combined = EnsembleWeights.Combine([[1f, 0f, 0.2f, 0.8f], [0f, 1f, 1f, 0f]], [0.25, 0.75], 2);
        Assert.Equal([0.25f, 0.75f, 0.8f, 0.2f], combined);
        Assert.Equal([1, 0], EnsembleWeights.ArgMax(combined, 2));
        Assert.Throws<ArgumentException>(() => EnsembleWeights.Fit([[0.5f, 0.5f]], [3], 2));
        Assert.Throws<ArgumentException>(() => EnsembleWeights.Fit([[0.5f, 0.5f, 1f]], [0], 2));
    }
}

public class ClassificationReportTests
{
    private static readonly string[] Names = ["A", "B", "C"];

    [Fact]
    public void MatchesAHandComputedThreeClassExample()
    {
        int[] labels = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2];
        int[] predicted = [0, 0, 0, 1, 1, 1, 2, 0, 2, 2];
        var r = ClassificationReport.Compute(labels, predicted, Names);
        Assert.Equal(0.7, r.Accuracy, 12);
        Assert.Equal(3, r.Confusion[0, 0]); Assert.Equal(1, r.Confusion[0, 1]); Assert.Equal(1, r.Confusion[2, 0]);
        Assert.Equal(0.75, r.RowNormalized[0, 0], 12);
        Assert.Equal(2 / 3.0, r.RowNormalized[1, 1], 12);
        // A: TP 3, FP 1 -> precision 0.75, recall 0.75. B: TP 2, FP 1 -> 2/3, 2/3. C: TP 2, FP 1 -> 2/3, 2/3.
        Assert.Equal(0.75, r.PerClass[0].Precision, 12);
        Assert.Equal(2 / 3.0, r.PerClass[2].Recall, 12);
        Assert.Equal(2 / 3.0, r.PerClass[1].F1, 12);
        Assert.Equal(4, r.PerClass[0].Support);
        Assert.Equal((0.75 + 2 / 3.0 + 2 / 3.0) / 3, r.MacroF1, 12);
        Assert.Equal("A", r.BestClass);
        Assert.Equal("B", r.WorstClass); // B and C tie at 2/3: the lower index wins
    }

    [Fact]
    public void FilesAreWrittenInTheirFormats()
    {
        var dir = Path.Combine(Path.GetTempPath(), "fer-ens-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            var r = ClassificationReport.Compute([0, 1, 2, 2], [0, 2, 2, 2], Names);
            var csv = Path.Combine(dir, "cm.csv");
            ConfusionMatrixFigure.SaveCsv(csv, r);
            var lines = File.ReadAllLines(csv);
            Assert.Equal("true\\predicted,A,B,C", lines[0]);
            Assert.Equal("B,0,0,1", lines[2]);
            var png = Path.Combine(dir, "cm.png");
            ConfusionMatrixFigure.SavePng(png, r, "test");
            Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], File.ReadAllBytes(png)[..4]);
            // Blues from white (0) to dark blue (1): the three cells of share 1 (and the top of the colour bar) are dark.
            using (var bitmap = SkiaSharp.SKBitmap.Decode(png))
            {
                int dark = 0;
                for (int y = 0; y < bitmap.Height; y++)
                    for (int x = 0; x < bitmap.Width; x++)
                        if (bitmap.GetPixel(x, y) is { Red: < 20, Green: < 60, Blue: > 70 }) dark++;
                Assert.InRange(dark, 3 * 100 * 100, 4 * 140 * 140); // six dark cells (a reversed scale) would be twice as many
            }
            var submission = Path.Combine(dir, "predictions.csv");
            SubmissionFile.Write(submission, [10, 11, 12], [3, 0, 6]);
            Assert.Equal("id,label\n10,3\n11,0\n12,6\n", File.ReadAllText(submission));
            Assert.Empty(Directory.GetFiles(dir, "*.tmp"));
        }
        finally { Directory.Delete(dir, true); }
    }
}

public class PredictorTests
{
    private sealed class TinyNet : FerModel
    {
        private readonly nn.Module<Tensor, Tensor> conv, flat, dense;
        private readonly List<NamedLayer> _layers;

        public TinyNet() : base("TinyNet")
        {
            conv = nn.Conv2d(1, 3, 3); flat = nn.Flatten(); dense = nn.Linear(3 * 6 * 6, 4);
            RegisterComponents();
            _layers = [new("conv2d_1", "Conv2D", conv), new("flatten_1", "Flatten", flat), new("dense_1", "Dense", dense)];
        }

        public override IReadOnlyList<NamedLayer> Layers => _layers;
        public override int InputSide => 8;
        public override int NumClasses => 4;
    }

    [Fact]
    public void ProbabilitiesSumToOneFlipAveragesBothViewsAndBatchingChangesNothing()
    {
        torch.manual_seed(3);
        using var model = new TinyNet();
        var faces = SyntheticFaces.Generate(new SyntheticFaceOptions(37, 1, Side: 8));
        var plain = Predictor.PredictProbabilities(model, faces, torch.CPU, tta: TestTimeAugmentation.None, batchSize: 5);
        for (int i = 0; i < faces.Count; i++) Assert.Equal(1.0, plain.AsSpan(i * 4, 4).ToArray().Sum(), 5);

        var mirrored = faces.Select(Enumerable.Range(0, faces.Count).ToArray());
        for (int i = 0; i < mirrored.Count; i++) FaceAugment.FlipInPlace(mirrored.Pixels.AsSpan(i * 64, 64), 8);
        var mirror = Predictor.PredictProbabilities(model, mirrored, torch.CPU, tta: TestTimeAugmentation.None);
        var tta = Predictor.PredictProbabilities(model, faces, torch.CPU, tta: TestTimeAugmentation.Flip, batchSize: 7);
        for (int k = 0; k < tta.Length; k++) Assert.Equal((plain[k] + mirror[k]) / 2, tta[k], 5);

        var oneBatch = Predictor.PredictProbabilities(model, faces, torch.CPU, tta: TestTimeAugmentation.None, batchSize: 1000);
        for (int k = 0; k < plain.Length; k++) Assert.Equal(plain[k], oneBatch[k], 6);
        Assert.True(model.training); // the model's mode is restored
    }
}
