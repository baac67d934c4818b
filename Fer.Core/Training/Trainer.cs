using System.Diagnostics;
using System.Globalization;
using Fer.Core.Data;
using Fer.Core.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Fer.Core.Training;

/// <summary>
/// Trains a <see cref="FerModel"/> with Adam on cross-entropy, validating after every epoch, with optional early
/// stopping, learning-rate reduction on plateau, online augmentation, class-weighted loss and per-epoch checkpoints
/// that a later Fit resumes from. Numbers depend only on (model's initial weights, data, options): batch order,
/// augmentation and the dropout generator are all re-derived from (Seed, epoch), so a resumed run ends with the
/// same weights and history as an uninterrupted one.
/// </summary>
public sealed class Trainer
{
    private readonly FerModel _model;
    private readonly TrainOptions _options;
    private readonly Device _device;
    private readonly string _modelName;

    public Trainer(FerModel model, TrainOptions options, Device device, string modelName)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(device);
        ArgumentException.ThrowIfNullOrWhiteSpace(modelName);
        options.Validate();
        _model = model; _options = options; _device = device; _modelName = modelName;
    }

    /// <summary>
    /// Trains on <paramref name="train"/> and validates on <paramref name="valid"/> (which may be empty: then the
    /// training loss/accuracy stand in for the monitored values). With <see cref="TrainOptions.CheckpointDir"/> set,
    /// continues from the last finished epoch found there, or returns at once if that run had already finished.
    /// <paramref name="onEpoch"/> runs after each epoch's checkpoint is written. Cancelling stops between batches
    /// with <see cref="OperationCanceledException"/>; the checkpoint of the last finished epoch stays valid.
    /// At the end the model holds the best epoch's weights when <see cref="TrainOptions.RestoreBestWeights"/> is set,
    /// else the last epoch's.
    /// </summary>
    public TrainResult Fit(FaceSet train, FaceSet valid, IProgress<TrainProgress>? progress = null,
        Action<EpochRecord>? onEpoch = null, CancellationToken ct = default)
    {
        CheckData(train, nameof(train), allowEmpty: false);
        CheckData(valid, nameof(valid), allowEmpty: true);
        var o = _options;

        _model.to(_device);
        using var convolutions = TorchRuntime.ConvolutionsForTraining(_model);
        // Everything Fit allocates (optimizer state, best-weight copies, class weights) lives until Fit returns.
        using var fitScope = NewDisposeScope();
        using var optimizer = CreateOptimizer();

        var fingerprint = Fingerprint(train, valid);
        var history = new List<EpochRecord>();
        var run = new RunState
        {
            LearningRate = o.LearningRate,
            BestMonitor = o.Monitor == EarlyStoppingMonitor.ValidLoss ? double.PositiveInfinity : double.NegativeInfinity,
            PlateauBest = double.PositiveInfinity,
        };
        Dictionary<string, Tensor>? best = null;
        int resumedFrom = 0;

        if (Resume(optimizer, fingerprint, history, ct) is { } resumed)
        {
            (run, best) = (resumed.Run, resumed.Best);
            resumedFrom = run.Epoch;
            if (run.StoppedEarly || run.Epoch >= o.Epochs)
                return Finish(history, run, best, resumedFrom);
        }
        else if (o.NormalizeInput)
        {
            var (mean, std) = PixelStatistics(train);
            _model.SetInputNormalization(mean, std);
        }

        SetLearningRate(optimizer, run.LearningRate);
        var classWeights = o.ClassWeightedLoss
            ? tensor(ClassWeights(train, _model.NumClasses).Select(w => (float)w).ToArray()).to(_device)
            : null;

        int firstEpoch = run.Epoch + 1;
        using var prefetcher = new BatchPrefetcher(train, o.BatchSize, o.Seed,
            pinMemory: _device.type == DeviceType.CUDA, firstEpoch, o.Epochs, o.PrefetchBatches, ct);
        double lastValidSeconds = 0;
        for (int epoch = firstEpoch; epoch <= o.Epochs; epoch++)
        {
            ct.ThrowIfCancellationRequested();
            var clock = Stopwatch.StartNew();
            var (loss, accuracy) = TrainEpoch(epoch, optimizer, prefetcher, classWeights, run.LearningRate,
                lastValidSeconds, progress, ct);
            double trainSeconds = clock.Elapsed.TotalSeconds;
            if (o.Schedule != LrSchedule.Constant) // the rate of the epoch's last step, as the history records it
                run.LearningRate = ScheduledRate(o, epoch * prefetcher.BatchesPerEpoch - 1, o.Epochs * prefetcher.BatchesPerEpoch);
            var (validLoss, validAccuracy) = Evaluate(valid);
            lastValidSeconds = clock.Elapsed.TotalSeconds - trainSeconds;
            var record = new EpochRecord(epoch, loss, accuracy, validLoss, validAccuracy, run.LearningRate,
                clock.Elapsed.TotalSeconds, train.Count / trainSeconds);
            history.Add(record);
            run.Epoch = epoch;

            bool stop = TrackBest(record, valid.Count > 0, run, ref best);
            ReduceOnPlateau(valid.Count > 0 ? validLoss : loss, run, optimizer);
            run.StoppedEarly = stop;

            if (o.CheckpointDir is not null)
                TrainingCheckpoint.Save(o.CheckpointDir, run.ToState(_modelName, fingerprint), _model, optimizer,
                    best ??= CloneWeights() /* no epoch has improved yet (NaN validation loss): BestEpoch stays 0 */, history);
            onEpoch?.Invoke(record);
            if (stop) break;
        }
        return Finish(history, run, best, resumedFrom);
    }

    /// <summary>
    /// The run the checkpoint folder holds, if any: its state, model, optimizer, history and best weights loaded. A
    /// checkpoint of another run is an error; one whose files do not load is set aside (the next run starts afresh).
    /// </summary>
    private (RunState Run, Dictionary<string, Tensor>? Best)? Resume(optim.Optimizer optimizer, string fingerprint, List<EpochRecord> history, CancellationToken ct)
    {
        var damaged = new List<(string Path, string Problem)>();
        var found = _options.CheckpointDir is null ? null : TrainingCheckpoint.TryLoadLatest(_options.CheckpointDir, damaged);
        _damagedCheckpoints = damaged;
        if (found is not { } checkpoint) return null;
        var (state, path) = checkpoint;
        if (state.Fingerprint != fingerprint)
            throw new InvalidOperationException(
                $"checkpoint {path} belongs to a different run ({state.Fingerprint}); this run is ({fingerprint}). " +
                "Use another CheckpointDir or delete it to start afresh.");
        try
        {
            // The best weights go through the model: load them, copy them out, then load the last epoch's.
            _model.load(Path.Combine(path, TrainingCheckpoint.BestFile));
            var best = CloneWeights();
            _model.load(Path.Combine(path, TrainingCheckpoint.ModelFile));
            TrainingCheckpoint.LoadOptimizer(path, optimizer);
            history.AddRange(Task.Run(() => TrainingHistoryStore.ReadAsync(Path.Combine(path, TrainingCheckpoint.HistoryFile), ct))
                .GetAwaiter().GetResult());
            if (history.Count != state.Epoch)
                throw new InvalidDataException($"history has {history.Count} epochs, state says {state.Epoch}");
            return (RunState.From(state), best);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Its files match their hashes yet do not load (written by another model or version): the model may be
            // half loaded, so this Fit cannot go on; the checkpoint is set aside and the next run starts afresh.
            var aside = TrainingCheckpoint.SetAside(path);
            throw new InvalidDataException($"checkpoint {path} could not be loaded ({e.Message}); it was moved to {aside}, run again to train from scratch", e);
        }
    }

    /// <summary>Best epoch and early stopping (Keras EarlyStopping, min_delta 0): copies the weights when the monitored value improves; true to stop.</summary>
    private bool TrackBest(EpochRecord record, bool hasValid, RunState run, ref Dictionary<string, Tensor>? best)
    {
        double monitored = Monitored(record, hasValid);
        bool improved = _options.Monitor == EarlyStoppingMonitor.ValidLoss ? monitored < run.BestMonitor : monitored > run.BestMonitor;
        if (improved)
        {
            run.BestMonitor = monitored; run.BestEpoch = record.Epoch; run.EarlyStoppingWait = 0;
            best = CopyWeightsInto(best);
        }
        else run.EarlyStoppingWait++;
        return _options.EarlyStoppingPatience is { } patience && run.EarlyStoppingWait >= patience && record.Epoch < _options.Epochs;
    }

    /// <summary>The learning rate on a plateau of the validation loss (Keras ReduceLROnPlateau, min_delta 1e-4, no cooldown).</summary>
    private void ReduceOnPlateau(double plateauLoss, RunState run, optim.Optimizer optimizer)
    {
        if (_options.ReduceLrFactor is not { } factor) return;
        if (plateauLoss < run.PlateauBest - 1e-4) { run.PlateauBest = plateauLoss; run.PlateauWait = 0; }
        else if (++run.PlateauWait >= _options.ReduceLrPatience)
        {
            run.LearningRate = Math.Max(run.LearningRate * factor, _options.MinLearningRate);
            SetLearningRate(optimizer, run.LearningRate);
            run.PlateauWait = 0;
        }
    }

    /// <summary>Per-class loss weights N / (C * count_c) from the labels; 0 for a class with no rows (it never occurs as a target).</summary>
    public static double[] ClassWeights(FaceSet train, int numClasses)
    {
        var counts = new long[numClasses];
        foreach (var label in train.Labels)
            if (label >= 0 && label < numClasses) counts[label]++;
        double n = counts.Sum();
        return counts.Select(c => c == 0 ? 0.0 : n / (numClasses * (double)c)).ToArray();
    }

    /// <summary>Mean and standard deviation of all pixels of the set, on the 0..1 scale (std 1 for a constant set).</summary>
    public static (float Mean, float Std) PixelStatistics(FaceSet set)
    {
        // Exact integer sums, so the result does not depend on summation order or threading.
        long sum = 0, sumSquares = 0;
        foreach (var b in set.Pixels) { sum += b; sumSquares += b * b; }
        double count = set.Pixels.LongLength;
        double mean = sum / count / 255.0;
        double variance = Math.Max(0, sumSquares / count / (255.0 * 255.0) - mean * mean);
        double std = Math.Sqrt(variance);
        return ((float)mean, std > 1e-6 ? (float)std : 1f);
    }

    private (double Loss, double Accuracy) TrainEpoch(int epoch, optim.Optimizer optimizer, BatchPrefetcher prefetcher,
        Tensor? classWeights, double learningRate, double lastValidSeconds, IProgress<TrainProgress>? progress,
        CancellationToken ct)
    {
        _model.train();
        // Every epoch's dropout masks come from (Seed, epoch) alone, which is what lets a resumed run match an
        // uninterrupted one. Fer's dropout layers draw from a generator of this training's own, so other work in the
        // process cannot move them; torch's global generator is reseeded the same way for a script's nn.Dropout.
        long dropoutSeed = new KeyedRandom(_options.Seed, 0x44_52_4F_50 /* "DROP" */, epoch).NextSeed();
        manual_seed(dropoutSeed);
        if (_device.type == DeviceType.CUDA) cuda.manual_seed_all(dropoutSeed);
        using var dropoutMasks = SeededDropout.DrawFrom(_model, dropoutSeed, _device);

        using var epochScope = NewDisposeScope();
        var lossSum = zeros(1, ScalarType.Float64, _device);
        var correct = zeros(1, ScalarType.Int64, _device);
        int batches = prefetcher.BatchesPerEpoch, seen = 0;
        // Reading the running sums forces a device sync; on the CPU that costs nothing, elsewhere do it now and then.
        int checkEvery = _device.type == DeviceType.CPU ? 1 : 16;
        var clock = Stopwatch.StartNew();
        var lastReport = TimeSpan.Zero;
        double loss = 0, accuracy = 0;
        for (int b = 0; b < batches; b++)
        {
            ct.ThrowIfCancellationRequested();
            using (var batch = prefetcher.Next(ct))
            using (var batchScope = NewDisposeScope())
            {
                if (batch.Epoch != epoch || batch.Index != b)
                    throw new InvalidOperationException($"batch producer out of step: got epoch {batch.Epoch} batch {batch.Index}, expected {epoch}/{b}");
                var images = batch.Images.to(_device, non_blocking: true);
                // Augmented here, on the model's device, not on the prefetcher's thread: libtorch's parallel ops on
                // two threads at once contended for the cores (measured on 2 cores: 0.83 of the unaugmented images/s
                // from the prefetcher, 0.9-1.0 here, where a batch of 64 costs about 2 ms; see BENCHMARKS.md, recipe).
                if (_options.Augmentation is { } augmentation)
                    images = BatchAugmenter.Augment(images, augmentation, _options.Seed, epoch, b);
                var labels = batch.Labels.to(_device, non_blocking: true);
                if (_options.Schedule != LrSchedule.Constant)
                    SetLearningRate(optimizer, ScheduledRate(_options, (epoch - 1) * batches + b, _options.Epochs * batches));
                optimizer.zero_grad();
                var logits = _model.call(images);
                var batchLoss = nn.functional.cross_entropy(logits, labels, classWeights, label_smoothing: _options.LabelSmoothing);
                batchLoss.backward();
                optimizer.step();
                using (no_grad())
                {
                    lossSum.add_(batchLoss.detach().to(ScalarType.Float64).mul(batch.Count));
                    correct.add_(logits.argmax(1).eq(labels).sum());
                }
                seen += batch.Count;
            }
            bool last = b == batches - 1;
            if (last || (b + 1) % checkEvery == 0)
            {
                double sum = lossSum.item<double>();
                loss = sum / seen;
                if (!double.IsFinite(sum)) throw new TrainingDivergedException(_modelName, epoch, loss);
                accuracy = correct.item<long>() / (double)seen;
                var elapsed = clock.Elapsed;
                // Throttled: the first and last batch of every epoch, and at most four reports a second in between.
                if (progress is not null && (b == 0 || last || elapsed - lastReport >= TimeSpan.FromMilliseconds(250)))
                {
                    lastReport = elapsed;
                    double perBatch = elapsed.TotalSeconds / (b + 1);
                    double etaSeconds = perBatch * (batches - b - 1)
                        + (_options.Epochs - epoch) * (perBatch * batches + lastValidSeconds);
                    progress.Report(new TrainProgress(_modelName, epoch, _options.Epochs, b + 1, batches, loss, accuracy,
                        seen / elapsed.TotalSeconds, TimeSpan.FromSeconds(etaSeconds)));
                }
            }
        }
        return (loss, accuracy);
    }

    /// <summary>Unweighted mean cross-entropy and accuracy over the set, in eval mode without gradients.</summary>
    private (double Loss, double Accuracy) Evaluate(FaceSet set)
    {
        if (set.Count == 0) return (double.NaN, double.NaN);
        _model.eval();
        using var noGrad = no_grad();
        using var evalScope = NewDisposeScope();
        var lossSum = zeros(1, ScalarType.Float64, _device);
        var correct = zeros(1, ScalarType.Int64, _device);
        for (int start = 0; start < set.Count; start += _options.BatchSize)
        {
            using var batchScope = NewDisposeScope();
            int n = Math.Min(_options.BatchSize, set.Count - start);
            var images = set.ImagesTensor(_device, start, n);
            var labels = set.LabelsTensor(_device, start, n);
            var logits = _model.call(images);
            lossSum.add_(nn.functional.cross_entropy(logits, labels, reduction: nn.Reduction.Sum).to(ScalarType.Float64));
            correct.add_(logits.argmax(1).eq(labels).sum());
        }
        _model.train();
        return (lossSum.item<double>() / set.Count, correct.item<long>() / (double)set.Count);
    }

    private List<(string Path, string Problem)> _damagedCheckpoints = [];

    private TrainResult Finish(List<EpochRecord> history, RunState run, Dictionary<string, Tensor>? best, int resumedFrom)
    {
        if (_options.RestoreBestWeights && best is not null && run.BestEpoch > 0) CopyWeightsFrom(best);
        var bestRecord = run.BestEpoch > 0 ? history[run.BestEpoch - 1] : null;
        double trainSeconds = history.Sum(h => h.ImagesPerSecond > 0 ? 1.0 / h.ImagesPerSecond : 0);
        return new TrainResult
        {
            History = history.ToList(),
            DamagedCheckpoints = _damagedCheckpoints,
            BestEpoch = run.BestEpoch,
            BestValidAccuracy = bestRecord?.ValidAccuracy ?? double.NaN,
            BestValidLoss = bestRecord?.ValidLoss ?? double.NaN,
            EpochsRun = history.Count,
            StoppedEarly = run.StoppedEarly,
            Seconds = history.Sum(h => h.Seconds),
            // Per-epoch images/s are N / seconds with the same N, so total throughput is epochs / sum(1 / rate).
            ImagesPerSecond = trainSeconds > 0 ? history.Count / trainSeconds : 0,
            ResumedFromEpoch = resumedFrom,
        };
    }

    private double Monitored(EpochRecord r, bool hasValid) => _options.Monitor switch
    {
        EarlyStoppingMonitor.ValidLoss => hasValid ? r.ValidLoss : r.Loss,
        _ => hasValid ? r.ValidAccuracy : r.Accuracy,
    };

    /// <summary>Detached copies of every parameter and buffer, in the current dispose scope.</summary>
    private Dictionary<string, Tensor> CloneWeights()
    {
        using var noGrad = no_grad();
        return _model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
    }

    private Dictionary<string, Tensor> CopyWeightsInto(Dictionary<string, Tensor>? copy)
    {
        if (copy is null) return CloneWeights();
        using var noGrad = no_grad();
        foreach (var (name, value) in _model.state_dict()) copy[name].copy_(value);
        return copy;
    }

    private void CopyWeightsFrom(Dictionary<string, Tensor> weights)
    {
        using var noGrad = no_grad();
        foreach (var (name, value) in _model.state_dict()) value.copy_(weights[name]);
    }

    private optim.Optimizer CreateOptimizer()
    {
        var o = _options;
        return o.Optimizer switch
        {
            OptimizerKind.Sgd => optim.SGD(_model.parameters(), o.LearningRate, momentum: o.Momentum, weight_decay: o.WeightDecay, nesterov: o.Nesterov),
            OptimizerKind.AdamW => optim.AdamW(_model.parameters(), lr: o.LearningRate, weight_decay: o.WeightDecay),
            _ => optim.Adam(_model.parameters(), lr: o.LearningRate, weight_decay: o.WeightDecay),
        };
    }

    /// <summary>
    /// The learning rate of a step (0-based, of <paramref name="steps"/>) under the options' schedule: cosine annealing
    /// from LearningRate to MinLearningRate, or one cycle (PyTorch's OneCycleLR: from rate / 25 up to the rate over the
    /// first 30 % of steps, then cosine down to rate / 25e4). A pure function of the step, so a resumed run matches.
    /// </summary>
    public static double ScheduledRate(TrainOptions o, int step, int steps)
    {
        double Cosine(double from, double to, double t) => to + (from - to) * (1 + Math.Cos(Math.PI * Math.Clamp(t, 0, 1))) / 2;
        switch (o.Schedule)
        {
            case LrSchedule.Cosine:
                return Cosine(o.LearningRate, o.MinLearningRate, steps <= 1 ? 0 : step / (double)(steps - 1));
            case LrSchedule.OneCycle:
                double initial = o.LearningRate / 25, final = initial / 1e4;
                double up = Math.Max(1, 0.3 * steps - 1);
                return step <= up ? Cosine(initial, o.LearningRate, step / up) : Cosine(o.LearningRate, final, (step - up) / Math.Max(1, steps - 1 - up));
            default:
                return o.LearningRate;
        }
    }

    private static void SetLearningRate(optim.Optimizer optimizer, double learningRate)
    {
        foreach (var group in optimizer.ParamGroups) group.LearningRate = learningRate;
    }

    private void CheckData(FaceSet set, string name, bool allowEmpty)
    {
        ArgumentNullException.ThrowIfNull(set, name);
        if (set.Count == 0 && !allowEmpty) throw new ArgumentException("the training set is empty", name);
        if (set.Count > 0 && set.Side != _model.InputSide)
            throw new ArgumentException($"{name} images are {set.Side}x{set.Side}, model {_modelName} takes {_model.InputSide}x{_model.InputSide}", name);
        for (int i = 0; i < set.Count; i++)
        {
            int label = set.Labels[i];
            if (label < 0 || label >= _model.NumClasses)
                throw new ArgumentException(label == FaceSet.Unlabeled
                    ? $"{name} row {i} (id {set.Ids[i]}) has no label"
                    : $"{name} row {i} (id {set.Ids[i]}) has label {label}, model {_modelName} has {_model.NumClasses} classes", name);
        }
    }

    /// <summary>What a checkpoint must agree on to be continued by this Fit: anything that changes the epochs' numbers
    /// other than the learning-rate schedule and the stopping rule.</summary>
    private string Fingerprint(FaceSet train, FaceSet valid)
    {
        var o = _options;
        var aug = o.Augmentation is { } a
            ? string.Create(CultureInfo.InvariantCulture, $"{a.MaxShift}/{a.MaxRotationDegrees}/{a.MaxZoom}/{a.HorizontalFlip}")
            : "none";
        return string.Create(CultureInfo.InvariantCulture,
            $"model={_modelName} params={_model.ParameterCount()} train={train.Count}:{DataHash(train):x16} " +
            $"valid={valid.Count}:{DataHash(valid):x16} batch={o.BatchSize} seed={o.Seed} wd={o.WeightDecay} aug={aug} " +
            $"classWeighted={o.ClassWeightedLoss} normalize={o.NormalizeInput} monitor={o.Monitor}");
    }

    /// <summary>FNV-1a over ids and labels: cheap, and catches a resume on different or reordered rows.</summary>
    private static ulong DataHash(FaceSet set)
    {
        ulong h = 14695981039346656037UL;
        for (int i = 0; i < set.Count; i++)
        {
            h = (h ^ (ulong)set.Ids[i]) * 1099511628211UL;
            h = (h ^ (uint)set.Labels[i]) * 1099511628211UL;
        }
        return h;
    }

    /// <summary>The mutable bookkeeping of a run, as saved in checkpoints.</summary>
    private sealed class RunState
    {
        public int Epoch;
        public int BestEpoch;
        public double BestMonitor;
        public int EarlyStoppingWait;
        public double PlateauBest;
        public int PlateauWait;
        public double LearningRate;
        public bool StoppedEarly;

        public CheckpointState ToState(string model, string fingerprint) => new()
        {
            Model = model, Fingerprint = fingerprint, Epoch = Epoch, BestEpoch = BestEpoch, BestMonitor = BestMonitor,
            EarlyStoppingWait = EarlyStoppingWait, PlateauBest = PlateauBest, PlateauWait = PlateauWait,
            LearningRate = LearningRate, StoppedEarly = StoppedEarly,
        };

        public static RunState From(CheckpointState s) => new()
        {
            Epoch = s.Epoch, BestEpoch = s.BestEpoch, BestMonitor = s.BestMonitor, EarlyStoppingWait = s.EarlyStoppingWait,
            PlateauBest = s.PlateauBest, PlateauWait = s.PlateauWait, LearningRate = s.LearningRate, StoppedEarly = s.StoppedEarly,
        };
    }
}
