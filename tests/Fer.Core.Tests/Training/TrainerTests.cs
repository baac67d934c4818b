using Fer.Core.Data;
using Fer.Core.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Tests.Training;

[Collection(TorchRandomCollection.Name)]
public class TrainerTests
{
    private static readonly FaceSet Train = ToyFaces.Make(192, seed: 1);
    private static readonly FaceSet Valid = ToyFaces.Make(60, seed: 2);

    /// <summary>The training images with every label moved to the next class: the better the model fits the
    /// training set, the worse its loss here gets after a first phase (drives early stopping and LR reduction).</summary>
    private static readonly FaceSet Misleading = new(Train.Side, Train.ClassNames, Train.Ids,
        Train.Labels.Select(l => (l + 1) % 3).ToArray(), Train.SourceIds, Train.Flipped, Train.Usage, Train.Pixels);

    private static TrainOptions Options(int epochs = 4, string? checkpointDir = null) => new()
    {
        Epochs = epochs, BatchSize = 32, LearningRate = 3e-3, Seed = 7, CheckpointDir = checkpointDir, PrefetchBatches = 2,
    };

    /// <summary>Options that exercise every source of state a resume must restore.</summary>
    private static TrainOptions RichOptions(int epochs, string? checkpointDir) => Options(epochs, checkpointDir) with
    {
        Augmentation = new OnlineAugmentation(MaxShift: 0.1, MaxRotationDegrees: 10, MaxZoom: 0.1, HorizontalFlip: true),
        ClassWeightedLoss = true,
        ReduceLrFactor = 0.5, ReduceLrPatience = 1,
        EarlyStoppingPatience = 10,
        WeightDecay = 1e-4,
    };

    private static TrainResult Fit(TinyModel model, TrainOptions options, FaceSet? train = null, FaceSet? valid = null,
        Action<EpochRecord>? onEpoch = null, IProgress<TrainProgress>? progress = null, CancellationToken ct = default) =>
        new Trainer(model, options, CPU, "tiny").Fit(train ?? Train, valid ?? Valid, progress, onEpoch, ct);

    /// <summary>History without the wall-clock fields, which legitimately differ between runs.</summary>
    private static List<EpochRecord> Numbers(IEnumerable<EpochRecord> history) =>
        history.Select(h => h with { Seconds = 0, ImagesPerSecond = 0 }).ToList();

    private static void AssertSameWeights(Dictionary<string, float[]> expected, Dictionary<string, float[]> actual)
    {
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, values) in expected)
            Assert.True(values.AsSpan().SequenceEqual(actual[name]), $"{name} differs");
    }

    [Fact]
    public void LearnsAToyProblem()
    {
        using var model = new TinyModel(initSeed: 1);
        var reports = new List<TrainProgress>();
        var result = Fit(model, Options(epochs: 8), progress: new InlineProgress<TrainProgress>(reports.Add));

        Assert.Equal(8, result.EpochsRun);
        Assert.Equal(Enumerable.Range(1, 8), result.History.Select(h => h.Epoch));
        Assert.True(result.History[^1].Loss < 0.6 * result.History[0].Loss,
            $"loss {result.History[0].Loss} -> {result.History[^1].Loss}");
        Assert.True(result.History[^1].ValidAccuracy > 0.6, $"valid accuracy {result.History[^1].ValidAccuracy} (chance 0.33)");
        Assert.True(result.BestValidAccuracy > 0.6);
        Assert.InRange(result.BestEpoch, 1, 8);
        Assert.Equal(result.History.Min(h => h.ValidLoss), result.BestValidLoss);
        Assert.All(result.History, h => Assert.True(h.ImagesPerSecond > 0 && h.Seconds > 0));
        Assert.Equal(0, result.ResumedFromEpoch);
        Assert.False(result.StoppedEarly);

        // Progress ends each epoch with its last batch, whose running loss is the epoch's loss.
        var ends = reports.Where(r => r.Batch == r.Batches).ToList();
        Assert.Equal(8, ends.Count);
        Assert.All(ends, r => Assert.Equal(6, r.Batches));
        Assert.Equal(result.History.Select(h => h.Loss), ends.Select(r => r.Loss));
        Assert.Equal(TimeSpan.Zero, ends[^1].Eta);
        Assert.All(reports, r => Assert.Equal("tiny", r.Model));

        // Normalisation was taken from the training pixels.
        var (mean, std) = model.InputNormalization;
        Assert.Equal(Trainer.PixelStatistics(Train), (mean, std));
        Assert.InRange(mean, 0.1f, 0.6f);
    }

    [Fact]
    public void SameSeedGivesIdenticalHistoryAndWeights()
    {
        using var a = new TinyModel(initSeed: 3);
        using var b = new TinyModel(initSeed: 3);
        var options = RichOptions(epochs: 3, checkpointDir: null);
        var ra = Fit(a, options);
        var rb = Fit(b, options);
        Assert.Equal(Numbers(ra.History), Numbers(rb.History));
        AssertSameWeights(a.Snapshot(), b.Snapshot());

        // A different seed changes batch order, augmentation and dropout, hence the numbers.
        using var c = new TinyModel(initSeed: 3);
        var rc = Fit(c, options with { Seed = 8 });
        Assert.NotEqual(Numbers(ra.History), Numbers(rc.History));
    }

    [Fact]
    public void ResumeAfterAnInterruptedEpochEqualsAnUninterruptedRun()
    {
        using var dirA = new TempDir();
        using var dirB = new TempDir();
        using var uninterrupted = new TinyModel(initSeed: 4);
        var full = Fit(uninterrupted, RichOptions(5, dirA.Path), valid: Misleading);

        // Run B: dies while reporting epoch 2 (its checkpoint is written before onEpoch runs).
        using (var first = new TinyModel(initSeed: 4))
        {
            var stop = Assert.Throws<InvalidOperationException>(() => Fit(first, RichOptions(5, dirB.Path), valid: Misleading,
                onEpoch: r => { if (r.Epoch == 2) throw new InvalidOperationException("simulated crash"); }));
            Assert.Equal("simulated crash", stop.Message);
        }
        // A new process would build the model from scratch: different initial weights must not matter.
        using var resumed = new TinyModel(initSeed: 99);
        var epochsSeen = new List<int>();
        var rest = Fit(resumed, RichOptions(5, dirB.Path), valid: Misleading, onEpoch: r => epochsSeen.Add(r.Epoch));

        Assert.Equal(2, rest.ResumedFromEpoch);
        Assert.Equal([3, 4, 5], epochsSeen);
        Assert.Equal(Numbers(full.History), Numbers(rest.History));
        Assert.Equal(full.BestEpoch, rest.BestEpoch);
        AssertSameWeights(uninterrupted.Snapshot(), resumed.Snapshot());
        // The learning-rate schedule carried over too: it was reduced before the interruption and after it.
        Assert.True(full.History[2].LearningRate < 3e-3, string.Join(", ", full.History.Select(h => h.LearningRate)));
        Assert.True(full.History[4].LearningRate < full.History[2].LearningRate);
    }

    /// <summary>
    /// The published recipe's parts (SGD with Nesterov momentum, a one-cycle schedule, label smoothing, flips and random
    /// erasing) train the toy problem, and a resume matches an uninterrupted run: optimizer state, the per-step rate and
    /// the erasing masks all carry over.
    /// </summary>
    [Fact]
    public void SgdNesterovWithOneCycleLabelSmoothingAndErasingLearnsAndResumesExactly()
    {
        TrainOptions Recipe(string dir) => Options(4, dir) with
        {
            Optimizer = OptimizerKind.Sgd, Momentum = 0.9, Nesterov = true, LearningRate = 0.05, WeightDecay = 1e-4,
            Schedule = LrSchedule.OneCycle, LabelSmoothing = 0.1,
            Augmentation = new OnlineAugmentation(MaxShift: 0.1, MaxRotationDegrees: 10, MaxZoom: 0.2, HorizontalFlip: true) { EraseProbability = 0.5 },
        };
        using var dirA = new TempDir();
        using var dirB = new TempDir();
        using var uninterrupted = new TinyModel(initSeed: 5);
        var full = Fit(uninterrupted, Recipe(dirA.Path));
        Assert.True(full.History[^1].Loss < full.History[0].Loss, string.Join(", ", full.History.Select(h => h.Loss)));
        Assert.True(full.History[^1].ValidAccuracy > 0.5, $"valid accuracy {full.History[^1].ValidAccuracy} (chance 0.33)");
        // The history records each epoch's last rate: up, then down to a small fraction of the peak.
        int steps = 4 * (int)Math.Ceiling(Train.Count / 32.0);
        Assert.Equal(Trainer.ScheduledRate(Recipe(dirA.Path), steps - 1, steps), full.History[^1].LearningRate, 12);
        Assert.True(full.History[0].LearningRate > full.History[^1].LearningRate * 100);

        using (var first = new TinyModel(initSeed: 5))
            Assert.Throws<InvalidOperationException>(() => Fit(first, Recipe(dirB.Path),
                onEpoch: r => { if (r.Epoch == 2) throw new InvalidOperationException("simulated crash"); }));
        using var resumed = new TinyModel(initSeed: 77);
        var rest = Fit(resumed, Recipe(dirB.Path));
        Assert.Equal(Numbers(full.History), Numbers(rest.History));
        AssertSameWeights(uninterrupted.Snapshot(), resumed.Snapshot());
    }

    [Fact]
    public void SchedulesFollowTheirCurvesAndBadCombinationsAreRefused()
    {
        var cosine = Options() with { LearningRate = 0.1, MinLearningRate = 0.001, Schedule = LrSchedule.Cosine };
        Assert.Equal(0.1, Trainer.ScheduledRate(cosine, 0, 101), 12);
        Assert.Equal(0.0505, Trainer.ScheduledRate(cosine, 50, 101), 12);
        Assert.Equal(0.001, Trainer.ScheduledRate(cosine, 100, 101), 12);
        var oneCycle = cosine with { Schedule = LrSchedule.OneCycle };
        Assert.Equal(0.1 / 25, Trainer.ScheduledRate(oneCycle, 0, 1000), 12);
        var rates = Enumerable.Range(0, 1000).Select(i => Trainer.ScheduledRate(oneCycle, i, 1000)).ToList();
        Assert.InRange(rates.IndexOf(rates.Max()), 295, 300); // the peak after 30 % of the steps
        Assert.Equal(0.1, rates.Max(), 9);
        Assert.Equal(0.1 / 25 / 1e4, rates[^1], 12);
        Assert.Contains("Nesterov", Assert.Throws<ArgumentException>(() => (Options() with { Nesterov = true }).Validate()).Message);
        Assert.Contains("plateau", Assert.Throws<ArgumentException>(() => (cosine with { ReduceLrFactor = 0.5 }).Validate()).Message);
    }

    [Fact]
    public void RandomErasingZeroesOneRectangleOfTwoToAThirdOfTheImageWithItsProbability()
    {
        using var all = BatchAugmenter.EraseMask(200, 48, 48, 1.0, new KeyedRandom(1, 2, 3));
        var erased = all.sum([1, 2, 3]).data<float>().ToArray().Select(kept => 1 - kept / (48.0 * 48.0)).ToList();
        Assert.All(erased, share => Assert.InRange(share, 0.015, 0.34));
        using var half = BatchAugmenter.EraseMask(2000, 48, 48, 0.5, new KeyedRandom(1, 2, 3));
        int touched = half.sum([1, 2, 3]).data<float>().ToArray().Count(kept => kept < 48 * 48);
        Assert.InRange(touched, 900, 1100);
        using var again = BatchAugmenter.EraseMask(200, 48, 48, 1.0, new KeyedRandom(1, 2, 3));
        Assert.True(all.equal(again).all().item<bool>()); // keyed: a resumed run erases the same pixels
    }

    [Fact]
    public void ResumeAfterCancellationMidEpochEqualsAnUninterruptedRun()
    {
        using var dir = new TempDir();
        using var uninterrupted = new TinyModel(initSeed: 5);
        var full = Fit(uninterrupted, RichOptions(4, null), valid: FaceSet.Empty(12, ToyFaces.Classes));

        using var cts = new CancellationTokenSource();
        using (var first = new TinyModel(initSeed: 5))
        {
            // Cancel in the middle of epoch 3: its partial work must be thrown away.
            var progress = new InlineProgress<TrainProgress>(p => { if (p.Epoch == 3) { Assert.True(p.Batch < p.Batches); cts.Cancel(); } });
            Assert.ThrowsAny<OperationCanceledException>(() => Fit(first, RichOptions(4, dir.Path),
                valid: FaceSet.Empty(12, ToyFaces.Classes), progress: progress, ct: cts.Token));
        }
        Assert.Single(Directory.GetDirectories(dir.Path)); // one checkpoint (epoch 2), no leftovers

        using var resumed = new TinyModel(initSeed: 6);
        var rest = Fit(resumed, RichOptions(4, dir.Path), valid: FaceSet.Empty(12, ToyFaces.Classes));
        Assert.Equal(2, rest.ResumedFromEpoch);
        Assert.Equal(Numbers(full.History), Numbers(rest.History));
        Assert.All(rest.History, h => Assert.True(double.IsNaN(h.ValidLoss)));
        AssertSameWeights(uninterrupted.Snapshot(), resumed.Snapshot());
    }

    [Fact]
    public void FinishedCheckpointReturnsWithoutTraining()
    {
        using var dir = new TempDir();
        using var model = new TinyModel(initSeed: 10);
        var options = Options(3, dir.Path);
        var first = Fit(model, options);

        using var again = new TinyModel(initSeed: 11);
        bool trained = false;
        var second = Fit(again, options, onEpoch: _ => trained = true,
            progress: new InlineProgress<TrainProgress>(_ => trained = true));
        Assert.False(trained);
        Assert.Equal(3, second.ResumedFromEpoch);
        Assert.Equal(3, second.EpochsRun);
        Assert.Equal(first.History, second.History);
        Assert.Equal(first.BestEpoch, second.BestEpoch);
        AssertSameWeights(model.Snapshot(), again.Snapshot()); // both hold the best epoch's weights
    }

    [Fact]
    public void CheckpointDirKeepsOnlyTheLatestAndIgnoresAnInterruptedWrite()
    {
        using var dir = new TempDir();
        using var model = new TinyModel(initSeed: 20);
        Fit(model, Options(2, dir.Path));
        Assert.Equal(["epoch-0002"], Directory.GetDirectories(dir.Path).Select(Path.GetFileName));
        Assert.Equal(["best.bin", "hashes.json", "history.parquet", "model.bin", "optimizer.bin", "state.json"],
            Directory.GetFiles(Path.Combine(dir.Path, "epoch-0002")).Select(Path.GetFileName).Order());

        // What a kill during a checkpoint write leaves behind: a half-written temporary directory.
        var torn = Directory.CreateDirectory(Path.Combine(dir.Path, ".tmp-0123456789abcdef"));
        File.WriteAllBytes(Path.Combine(torn.FullName, "model.bin"), [1, 2, 3]);

        // A finished run asked for more epochs continues from where it ended.
        using var more = new TinyModel(initSeed: 21);
        var result = Fit(more, Options(3, dir.Path));
        Assert.Equal(2, result.ResumedFromEpoch);
        Assert.Equal([1, 2, 3], result.History.Select(h => h.Epoch));
        Assert.Equal(["epoch-0003"], Directory.GetDirectories(dir.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void NoTensorOutlivesItsEpoch()
    {
        // Counted after Fit returns (prefetcher stopped, nothing in flight), so the count does not depend on how far
        // the background prefetcher had got: a tensor leaked per epoch or per batch makes 6 epochs leave more behind
        // than 2 do.
        long LeftBehind(int epochs)
        {
            using var dir = new TempDir();
            long before = Settled();
            using var model = new TinyModel(initSeed: 22);
            Fit(model, RichOptions(epochs, dir.Path) with { PrefetchBatches = 3 });
            return Settled() - before;
        }
        static long Settled()
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            return Tensor.TotalCount;
        }
        long afterTwo = LeftBehind(2), afterSix = LeftBehind(6);
        Assert.True(afterTwo == afterSix, $"tensors left behind: {afterTwo} after 2 epochs, {afterSix} after 6");
    }

    [Fact]
    public void CheckpointOfADifferentRunIsRefused()
    {
        using var dir = new TempDir();
        using (var model = new TinyModel(initSeed: 12)) Fit(model, Options(1, dir.Path));
        using var other = new TinyModel(initSeed: 12);
        var error = Assert.Throws<InvalidOperationException>(() => Fit(other, Options(2, dir.Path) with { Seed = 123 }));
        Assert.Contains("different run", error.Message);
    }

    [Fact]
    public void EarlyStoppingRestoresTheBestEpochsWeights()
    {
        using var model = new TinyModel(initSeed: 13);
        var snapshots = new Dictionary<int, Dictionary<string, float[]>>();
        var result = Fit(model, Options(epochs: 30) with { EarlyStoppingPatience = 2, LearningRate = 1e-2 },
            valid: Misleading, onEpoch: r => snapshots[r.Epoch] = model.Snapshot());

        Assert.True(result.StoppedEarly);
        Assert.True(result.BestEpoch < result.EpochsRun, $"best {result.BestEpoch}, ran {result.EpochsRun}");
        Assert.Equal(result.BestEpoch + 2, result.EpochsRun);
        Assert.Equal(result.History.Min(h => h.ValidLoss), result.BestValidLoss);
        Assert.Equal(result.History[result.BestEpoch - 1].ValidLoss, result.BestValidLoss);
        AssertSameWeights(snapshots[result.BestEpoch], model.Snapshot());
        Assert.False(snapshots[result.EpochsRun]["dense_1.weight"].AsSpan().SequenceEqual(model.Snapshot()["dense_1.weight"]));
    }

    [Fact]
    public void WithoutRestoreTheModelKeepsTheLastEpochsWeights()
    {
        using var model = new TinyModel(initSeed: 14);
        Dictionary<string, float[]>? last = null;
        Fit(model, Options(3) with { RestoreBestWeights = false, Monitor = EarlyStoppingMonitor.ValidAccuracy },
            onEpoch: _ => last = model.Snapshot());
        AssertSameWeights(last!, model.Snapshot());
    }

    [Fact]
    public void ExplodingLearningRateIsReportedAsDivergence()
    {
        using var model = new TinyModel(initSeed: 15);
        var error = Assert.Throws<TrainingDivergedException>(() => Fit(model, Options(3) with { LearningRate = 1e30 }));
        Assert.Equal(1, error.Epoch);
        Assert.StartsWith("model tiny diverged at epoch 1: loss ", error.Message);
    }

    [Fact]
    public void NaNWeightsInAnEpochNameThatEpoch()
    {
        using var model = new TinyModel(initSeed: 16);
        var error = Assert.Throws<TrainingDivergedException>(() => Fit(model, Options(4), onEpoch: r =>
        {
            if (r.Epoch != 2) return;
            using var noGrad = no_grad();
            model.parameters().First().fill_(double.NaN);
        }));
        Assert.Equal("model tiny diverged at epoch 3: loss NaN", error.Message);
        Assert.Equal("tiny", error.ModelName);
    }

    [Fact]
    public void ClassWeightsFollowTheTrainingLabelsAndChangeTheLoss()
    {
        var skewed = ToyFaces.Make(150, seed: 3, classShares: [0.7, 0.2, 0.1]);
        var counts = skewed.ClassCounts();
        var weights = Trainer.ClassWeights(skewed, 3);
        for (int c = 0; c < 3; c++) Assert.Equal(150.0 / (3 * counts[c]), weights[c], 12);
        Assert.True(weights[2] > weights[1] && weights[1] > weights[0]);
        Assert.Equal([0.0, 1.0, 0.5], Trainer.ClassWeights(new FaceSet(12, ToyFaces.Classes, [1, 2, 3], [1, 2, 2],
            [1, 2, 3], new bool[3], new FaceUsage[3], new byte[3 * 144]), 3));

        using var plain = new TinyModel(initSeed: 17);
        using var weighted = new TinyModel(initSeed: 17);
        var rPlain = Fit(plain, Options(1), train: skewed);
        var rWeighted = Fit(weighted, Options(1) with { ClassWeightedLoss = true }, train: skewed);
        Assert.NotEqual(rPlain.History[0].Loss, rWeighted.History[0].Loss);
        Assert.False(plain.Snapshot()["dense_1.bias"].AsSpan().SequenceEqual(weighted.Snapshot()["dense_1.bias"]));
    }

    [Fact]
    public void ReduceLrOnPlateauLowersTheRateDownToTheMinimum()
    {
        using var model = new TinyModel(initSeed: 18);
        var result = Fit(model, Options(8) with { ReduceLrFactor = 0.1, ReduceLrPatience = 1, MinLearningRate = 2e-5 },
            valid: Misleading);
        var rates = result.History.Select(h => h.LearningRate).ToList();
        Assert.Equal(3e-3, rates[0]);
        Assert.True(rates.Zip(rates.Skip(1)).All(p => p.Second <= p.First), string.Join(", ", rates));
        Assert.Contains(rates, r => r < 3e-3);
        Assert.All(rates, r => Assert.True(r >= 2e-5));
        // Each drop is a factor of 10 or a clamp to the minimum.
        foreach (var (before, after) in rates.Zip(rates.Skip(1)).Where(p => p.Second < p.First))
            Assert.True(Math.Abs(after - before * 0.1) < 1e-15 || after == 2e-5, $"{before} -> {after}");
    }

    [Fact]
    public void BadInputIsRejectedWithAClearMessage()
    {
        using var model = new TinyModel(initSeed: 19);
        var wrongSide = ToyFaces.Make(10, seed: 4, side: 14);
        Assert.Contains("14x14", Assert.Throws<ArgumentException>(() => Fit(model, Options(1), train: wrongSide)).Message);
        var unlabeled = new FaceSet(12, ToyFaces.Classes, [5], [FaceSet.Unlabeled], [5], [false], [FaceUsage.Test], new byte[144]);
        Assert.Contains("no label", Assert.Throws<ArgumentException>(() => Fit(model, Options(1), valid: unlabeled)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new Trainer(model, Options(0), CPU, "tiny"));
    }
}
