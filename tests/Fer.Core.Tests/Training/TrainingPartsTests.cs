using Fer.Core.Plots;
using Fer.Core.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Tests.Training;

public class TrainingPartsTests
{
    [Fact]
    public void PrefetcherVisitsEveryRowOncePerEpochWithItsLabelInASeededOrder()
    {
        // Each image's pixels encode its row number, so a batch can be checked against the set.
        const int rows = 70, side = 12;
        var set = ToyFaces.Make(rows, seed: 5);
        for (int r = 0; r < rows; r++) set.Pixels[r * side * side] = (byte)r;

        var seen = new Dictionary<int, List<int>>();
        using (var prefetcher = new BatchPrefetcher(set, batchSize: 32, seed: 3, pinMemory: false,
                   firstEpoch: 2, lastEpoch: 3, capacity: 2, CancellationToken.None))
        {
            Assert.Equal(3, prefetcher.BatchesPerEpoch);
            for (int epoch = 2; epoch <= 3; epoch++)
            {
                seen[epoch] = [];
                for (int b = 0; b < 3; b++)
                {
                    using var batch = prefetcher.Next(CancellationToken.None);
                    Assert.Equal((epoch, b), (batch.Epoch, batch.Index));
                    Assert.Equal(b < 2 ? 32 : 6, batch.Count);
                    Assert.Equal([batch.Count, 1, side, side], batch.Images.shape);
                    var firstPixels = batch.Images[.., 0, 0, 0].mul(255).round().to(ScalarType.Int32).data<int>().ToArray();
                    var labels = batch.Labels.data<long>().ToArray();
                    for (int k = 0; k < batch.Count; k++) Assert.Equal(set.Labels[firstPixels[k]], labels[k]);
                    seen[epoch].AddRange(firstPixels);
                }
            }
            // Past the last epoch the producer is done.
            Assert.Throws<InvalidOperationException>(() => prefetcher.Next(CancellationToken.None));
        }
        Assert.Equal(Enumerable.Range(0, rows), seen[2].Order());
        Assert.Equal(Enumerable.Range(0, rows), seen[3].Order());
        Assert.NotEqual(seen[2], seen[3]);
        Assert.NotEqual(Enumerable.Range(0, rows), seen[2]);
        Assert.Equal(BatchPrefetcher.EpochOrder(3, 2, rows), seen[2]);
        Assert.Equal(BatchPrefetcher.EpochOrder(3, 2, rows), BatchPrefetcher.EpochOrder(3, 2, rows));
        Assert.NotEqual(BatchPrefetcher.EpochOrder(4, 2, rows), seen[2]);
    }

    [Fact]
    public void PrefetcherStopsCleanlyWhenDisposedEarly()
    {
        var set = ToyFaces.Make(100, seed: 6);
        var prefetcher = new BatchPrefetcher(set, 10, 1, false, 1, 50, capacity: 3, CancellationToken.None);
        using (var batch = prefetcher.Next(CancellationToken.None)) Assert.Equal(10, batch.Count);
        prefetcher.Dispose(); // producer is blocked on a full buffer: must stop, not hang
    }

    [Fact]
    public void AugmentationWithNothingToDoKeepsTheImages()
    {
        using var scope = NewDisposeScope();
        var images = ToyFaces.Make(8, seed: 7).ImagesTensor();
        var same = BatchAugmenter.Augment(images, new OnlineAugmentation(0, 0, 0, false), seed: 1, epoch: 1, batch: 0);
        Assert.True(same.allclose(images, rtol: 0, atol: 1e-5));
    }

    [Fact]
    public void FlipOnlyAugmentationMirrorsSomeImagesAndKeepsTheOthers()
    {
        using var scope = NewDisposeScope();
        var images = ToyFaces.Make(32, seed: 8).ImagesTensor();
        var flipped = images.flip(3);
        var result = BatchAugmenter.Augment(images, new OnlineAugmentation(0, 0, 0, HorizontalFlip: true), 1, 1, 0);
        int mirrored = 0;
        for (int i = 0; i < 32; i++)
        {
            bool isSame = result[i].allclose(images[i], rtol: 0, atol: 1e-5);
            bool isMirror = result[i].allclose(flipped[i], rtol: 0, atol: 1e-5);
            Assert.True(isSame || isMirror, $"image {i} is neither kept nor mirrored");
            if (isMirror && !isSame) mirrored++;
        }
        Assert.InRange(mirrored, 6, 26); // about half of 32
    }

    [Fact]
    public void AugmentationIsKeyedBySeedEpochAndBatch()
    {
        using var scope = NewDisposeScope();
        var images = ToyFaces.Make(16, seed: 9).ImagesTensor();
        var options = new OnlineAugmentation(MaxShift: 0.15, MaxRotationDegrees: 15, MaxZoom: 0.1, HorizontalFlip: true);
        var a = BatchAugmenter.Augment(images, options, 1, 2, 3);
        var b = BatchAugmenter.Augment(images, options, 1, 2, 3);
        Assert.True(a.eq(b).all().item<bool>());
        Assert.False(a.allclose(BatchAugmenter.Augment(images, options, 1, 2, 4)));
        Assert.False(a.allclose(BatchAugmenter.Augment(images, options, 1, 3, 3)));
        Assert.False(a.allclose(images, atol: 1e-3));
        // Border filling keeps pixel values inside the input's range.
        Assert.True(a.min().item<float>() >= images.min().item<float>() - 1e-6);
        Assert.True(a.max().item<float>() <= images.max().item<float>() + 1e-6);
    }

    [Fact]
    public async Task HistoryParquetRoundTripsExactly()
    {
        using var dir = new TempDir();
        var history = new List<EpochRecord>
        {
            new(1, 1.2345678901234567, 0.4, 1.1, 0.45, 1e-3, 2.5, 1234.5),
            new(2, 0.9, 0.55, double.NaN, double.NaN, 5e-4, 2.25, 1500),
            new(3, 0.7, 0.6, 0.8, 0.62, 2.5e-4, 2.0, 1600.125),
        };
        var path = Path.Combine(dir.Path, "sub", "history.parquet");
        await TrainingHistoryStore.WriteAsync(path, history);
        await TrainingHistoryStore.WriteAsync(path, history); // overwrites in place
        Assert.Equal(history, await TrainingHistoryStore.ReadAsync(path));
        Assert.Equal(["history.parquet"], Directory.GetFiles(Path.GetDirectoryName(path)!).Select(Path.GetFileName));
    }

    [Fact]
    public void CurvePngsAreWritten()
    {
        using var dir = new TempDir();
        var cnn = Enumerable.Range(1, 12).Select(e => new EpochRecord(e, 1.8 / Math.Sqrt(e), 0.3 + 0.04 * e, 1.7 / Math.Sqrt(e) + 0.01 * e,
            0.32 + 0.03 * e, 1e-3, 10, 500)).ToList();
        var dnn = cnn.Select(r => r with { ValidAccuracy = r.ValidAccuracy * 0.7 }).ToList();
        var curves = Path.Combine(dir.Path, "cnn_curves.png");
        var comparison = Path.Combine(dir.Path, "cnn_vs_dnn.png");
        TrainingCurves.SaveAccuracyAndLoss(curves, "CNN", cnn, bestEpoch: 9);
        TrainingCurves.SaveValidationComparison(comparison,
            new Dictionary<string, IReadOnlyList<EpochRecord>> { ["CNN"] = cnn, ["DNN"] = dnn }, "validation accuracy: CNN vs DNN");
        // A history without validation (NaN) still draws its training curves.
        var noValid = Path.Combine(dir.Path, "no_valid.png");
        TrainingCurves.SaveAccuracyAndLoss(noValid, "final", cnn.Select(r => r with { ValidLoss = double.NaN, ValidAccuracy = double.NaN }).ToList());

        foreach (var png in new[] { curves, comparison, noValid })
        {
            var bytes = File.ReadAllBytes(png);
            Assert.True(bytes.Length > 10_000, $"{png}: {bytes.Length} bytes");
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes[..4]);
        }
        Assert.Equal(3, Directory.GetFiles(dir.Path).Length); // no temporaries left behind
        var inspect = Environment.GetEnvironmentVariable("FER_TEST_FIGURES");
        if (!string.IsNullOrEmpty(inspect))
        {
            Directory.CreateDirectory(inspect);
            foreach (var png in Directory.GetFiles(dir.Path)) File.Copy(png, Path.Combine(inspect, Path.GetFileName(png)), true);
        }
    }

    [Fact]
    public void ALegendGoesToTheCornerWithTheFewestPointsAndToTheUsualOneOnATie()
    {
        // A validation accuracy that falls over two epochs (a tiny run) ends in the lower right, where the accuracy
        // panel's legend usually is; rising curves leave that corner empty.
        var falling = new ScottPlot.Plot();
        falling.Add.Scatter(new double[] { 1, 2 }, new double[] { 0.1321, 0.1339 });
        falling.Add.Scatter(new double[] { 1, 2 }, new double[] { 0.1286, 0.1143 });
        falling.Axes.AutoScale();
        Assert.Equal(ScottPlot.Alignment.LowerLeft, TrainingCurves.LeastCrowdedCorner(falling, ScottPlot.Alignment.LowerRight));
        var rising = new ScottPlot.Plot();
        rising.Add.Scatter(new double[] { 1, 2, 3, 4 }, new double[] { 0.2, 0.5, 0.7, 0.8 });
        rising.Axes.AutoScale();
        Assert.Equal(ScottPlot.Alignment.LowerRight, TrainingCurves.LeastCrowdedCorner(rising, ScottPlot.Alignment.LowerRight));
    }
}
