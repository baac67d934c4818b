using Fer.Core.Explain;
using Fer.Core.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Tests.Explain;

public class FaithfulnessTests
{
    [Fact]
    public void TheImputerReconstructsALinearRampInsideTheImageExactly()
    {
        const int side = 12;
        var image = new float[side * side];
        for (int r = 0; r < side; r++) for (int c = 0; c < side; c++) image[r * side + c] = 0.1f + 0.03f * r + 0.05f * c;
        var removed = new bool[side * side];
        var random = new Random(1);
        for (int r = 1; r < side - 1; r++) for (int c = 1; c < side - 1; c++) removed[r * side + c] = random.NextDouble() < 0.6;
        var filled = (float[])image.Clone();
        for (int p = 0; p < filled.Length; p++) if (removed[p]) filled[p] = 0;
        Faithfulness.ImputeNoisyLinear(filled, side, removed, noise: 0, new Random(2));
        for (int p = 0; p < filled.Length; p++) Assert.Equal(image[p], filled[p], 3);
        Assert.True(removed.Count(b => b) > 40);
    }

    [Fact]
    public void TheImputerAddsNoiseOnlyToRemovedPixelsAndDependsOnlyOnItsRandomSource()
    {
        const int side = 8;
        var image = Enumerable.Range(0, 64).Select(p => (float)(p % 7) / 7).ToArray();
        var removed = Enumerable.Range(0, 64).Select(p => p % 3 == 0).ToArray();
        var a = (float[])image.Clone();
        var b = (float[])image.Clone();
        var quiet = (float[])image.Clone();
        Faithfulness.ImputeNoisyLinear(a, side, removed, 0.05, new Random(3));
        Faithfulness.ImputeNoisyLinear(b, side, removed, 0.05, new Random(3));
        Faithfulness.ImputeNoisyLinear(quiet, side, removed, 0, new Random(3));
        Assert.Equal(a, b);
        for (int p = 0; p < 64; p++)
            if (!removed[p]) Assert.Equal(image[p], a[p]);
        double noise = Enumerable.Range(0, 64).Where(p => removed[p]).Select(p => Math.Abs(a[p] - quiet[p])).Average();
        Assert.InRange(noise, 0.01, 0.1);
    }

    [Fact]
    public void CurveAreaIsTheTrapezoidOverTheSpan()
    {
        Assert.Equal(0.5, new FaithfulnessCurve([0, 0.5, 1], [1, 0.5, 0]).Area, 12);
        Assert.Equal(0.625, new FaithfulnessCurve([0, 0.5, 1], [1, 0.5, 0.5]).Area, 12);
        Assert.Equal(0.4, new FaithfulnessCurve([0.1, 0.9], [0.6, 0.2]).Area, 12);
    }

    /// <summary>
    /// A model whose class-0 logit is 2 * (bright cells - dark cells) of a checkerboard in the top-left quadrant, minus 7:
    /// the images carry that checkerboard (bright cells 0.9-1, dark 0-0.1) on grey, so the mean fill of deletion, the
    /// blur insertion starts from and ROAD's imputer all remove it. A map that ranks the quadrant first deletes and
    /// inserts the evidence first; random maps do not.
    /// </summary>
    [Fact]
    public void AMapOnTheEvidenceBeatsRandomMapsOnEveryCurve()
    {
        using var model = new QuadrantModel();
        var generator = new torch.Generator(5, torch.CPU);
        var pattern = torch.tensor(Enumerable.Range(0, 64).Select(p => QuadrantModel.Sign(p) switch { > 0 => 0.9f, < 0 => 0f, _ => 0.4f }).ToArray(), [1, 1, 8, 8]);
        using var images = torch.rand([6, 1, 8, 8], generator: generator) * 0.1 + pattern; // class 0
        var map = new float[6 * 64];
        for (int i = 0; i < 6; i++) for (int r = 0; r < 4; r++) for (int c = 0; c < 4; c++) map[i * 64 + r * 8 + c] = 1;
        var maps = new SaliencyResult(map, [0, 0, 0, 0, 0, 0], 8) { Method = "truth" };
        var options = new FaithfulnessOptions(Steps: 8, Seed: 1);
        var truth = Faithfulness.Measure(model, images, maps, options);
        var random = Faithfulness.MeasureRandom(model, images, [0, 0, 0, 0, 0, 0], options);
        Assert.True(truth.DeletionAuc < random.DeletionAuc - 0.1, $"deletion {truth.DeletionAuc:0.000} vs random {random.DeletionAuc:0.000}");
        Assert.True(truth.InsertionAuc > random.InsertionAuc + 0.1, $"insertion {truth.InsertionAuc:0.000} vs random {random.InsertionAuc:0.000}");
        Assert.True(truth.RoadMorfScore < truth.RoadLerfScore - 0.2, $"ROAD MoRF {truth.RoadMorfScore:0.000} LeRF {truth.RoadLerfScore:0.000}");
        Assert.True(truth.Score > random.Score + 0.3, $"score {truth.Score:0.000} vs random {random.Score:0.000}");
        // At fraction 0 nothing is deleted: both curves start at the model's own confidence.
        Assert.Equal(truth.Deletion.MeanProbability[0], random.Deletion.MeanProbability[0], 6);
        Assert.Equal(truth.Insertion.MeanProbability[^1], random.Insertion.MeanProbability[^1], 6);
    }

    [Fact]
    public void EvidenceRatioIsOneForAnEvenMapAndHigherForAMapOnTheRegion()
    {
        var evidence = Enumerable.Range(0, 16).Select(p => p < 4 ? 1f : 0f).ToArray();
        var even = new SaliencyResult(Enumerable.Repeat(1f, 16).ToArray(), [0], 4);
        var onRegion = new SaliencyResult(evidence.ToArray(), [0], 4);
        Assert.Equal(1.0, Faithfulness.EvidenceRatio(even, evidence), 9);
        Assert.Equal(4.0, Faithfulness.EvidenceRatio(onRegion, evidence), 9);
    }

    private sealed class QuadrantModel : FerModel
    {
        private readonly nn.Module<Tensor, Tensor> dense_1;
        private readonly List<NamedLayer> _layers;

        public QuadrantModel() : base("quadrant")
        {
            var linear = nn.Linear(64, 2);
            dense_1 = nn.Sequential(nn.Flatten(), linear);
            RegisterComponents();
            _layers = [new("dense_1", "Dense", dense_1)];
            using var noGrad = torch.no_grad();
            var w = new float[128];
            for (int p = 0; p < 64; p++) w[p] = 2f * Sign(p);
            linear.weight!.copy_(torch.tensor(w, [2, 64]));
            linear.bias!.copy_(torch.tensor(new float[] { -7, 0 }));
        }

        /// <summary>+1 on the checkerboard's bright cells of the top-left quadrant, -1 on its dark cells, 0 elsewhere.</summary>
        public static int Sign(int p)
        {
            int r = p / 8, c = p % 8;
            return r >= 4 || c >= 4 ? 0 : (r + c) % 2 == 0 ? 1 : -1;
        }

        public override IReadOnlyList<NamedLayer> Layers => _layers;
        public override int InputSide => 8;
        public override int NumClasses => 2;
    }
}
