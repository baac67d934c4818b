namespace Fer.Core.Training;

/// <summary>
/// Random geometric changes applied to every training batch, like Keras' ImageDataGenerator: a shift of up to
/// <paramref name="MaxShift"/> of the image side in each direction, a rotation of up to
/// <paramref name="MaxRotationDegrees"/>, a zoom factor in [1 - MaxZoom, 1 + MaxZoom] per axis, and a mirror image
/// with probability 1/2 when <paramref name="HorizontalFlip"/> is set. Pixels from outside the image repeat the
/// nearest edge pixel (Keras' fill_mode "nearest").
/// </summary>
public sealed record OnlineAugmentation(
    double MaxShift = 0.1, double MaxRotationDegrees = 10, double MaxZoom = 0.1, bool HorizontalFlip = false)
{
    /// <summary>
    /// Random erasing (Zhong et al., torchvision's RandomErasing defaults): with this probability a rectangle of 2-33 %
    /// of the image, aspect ratio 0.3-3.3, is set to 0 after the warp.
    /// </summary>
    public double EraseProbability { get; init; }

    /// <summary>
    /// Random crops for a model that sees the centre of its input (<see cref="Models.FerModel.CropMargin"/>): each image
    /// also moves by a whole number of pixels from -CropMargin to CropMargin on each axis, so the centre the model sees
    /// is a random crop (torchvision's RandomCrop) while the image stays whole. 0 = none.
    /// </summary>
    public int CropMargin { get; init; }

    public void Validate()
    {
        if (CropMargin is < 0 or > 64) throw new ArgumentOutOfRangeException(nameof(CropMargin), CropMargin, "must be from 0 to 64 pixels");
        if (!(EraseProbability >= 0 && EraseProbability <= 1)) throw new ArgumentOutOfRangeException(nameof(EraseProbability), EraseProbability, "must be in [0, 1]");
        if (!(MaxShift >= 0 && MaxShift < 1)) throw new ArgumentOutOfRangeException(nameof(MaxShift), MaxShift, "must be in [0, 1)");
        if (!(MaxRotationDegrees >= 0 && MaxRotationDegrees <= 180))
            throw new ArgumentOutOfRangeException(nameof(MaxRotationDegrees), MaxRotationDegrees, "must be in [0, 180]");
        if (!(MaxZoom >= 0 && MaxZoom < 1)) throw new ArgumentOutOfRangeException(nameof(MaxZoom), MaxZoom, "must be in [0, 1)");
    }
}

/// <summary>The optimizer: Adam (the seed report's), AdamW (decoupled weight decay), or SGD with momentum (optionally Nesterov's).</summary>
public enum OptimizerKind { Adam, AdamW, Sgd }

/// <summary>
/// How the learning rate moves within the run, step by step (each batch): constant (ReduceLrFactor may still lower it
/// on a plateau), cosine annealing from the rate to MinLearningRate, or one cycle (PyTorch's OneCycleLR defaults: up from
/// rate / 25 over the first 30 % of steps, then cosine down to rate / 1e4).
/// </summary>
public enum LrSchedule { Constant, Cosine, OneCycle }

/// <summary>What early stopping and "best epoch" watch.</summary>
public enum EarlyStoppingMonitor
{
    /// <summary>Validation loss, lower is better (Keras' default val_loss).</summary>
    ValidLoss,
    /// <summary>Validation accuracy, higher is better.</summary>
    ValidAccuracy,
}

/// <summary>How <see cref="Trainer"/> trains. Defaults follow the seed report's Keras setup (Adam, lr 1e-3).</summary>
public sealed record TrainOptions
{
    public int Epochs { get; init; } = 30;
    public int BatchSize { get; init; } = 128;
    public double LearningRate { get; init; } = 1e-3;
    /// <summary>Weight decay: L2 added to the gradient for Adam and SGD (as torch.optim does), decoupled for AdamW.</summary>
    public double WeightDecay { get; init; }
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Adam;
    /// <summary>SGD's momentum.</summary>
    public double Momentum { get; init; } = 0.9;
    /// <summary>SGD with Nesterov's momentum.</summary>
    public bool Nesterov { get; init; }
    public LrSchedule Schedule { get; init; } = LrSchedule.Constant;
    /// <summary>Cross-entropy against (1 - s) one-hot + s / C (Szegedy et al.); 0 = plain cross-entropy. Validation loss stays plain.</summary>
    public double LabelSmoothing { get; init; }

    /// <summary>Stop after this many epochs without improvement of <see cref="Monitor"/>; null = never stop early.</summary>
    public int? EarlyStoppingPatience { get; init; }
    /// <summary>The quantity that defines the best epoch (for early stopping and <see cref="RestoreBestWeights"/>).</summary>
    public EarlyStoppingMonitor Monitor { get; init; } = EarlyStoppingMonitor.ValidLoss;
    /// <summary>When training ends (early or not), put the best epoch's weights back into the model.</summary>
    public bool RestoreBestWeights { get; init; } = true;

    /// <summary>Multiply the learning rate by this factor after <see cref="ReduceLrPatience"/> epochs without a
    /// validation-loss improvement of at least 1e-4 (Keras' ReduceLROnPlateau); null = constant rate.</summary>
    public double? ReduceLrFactor { get; init; }
    public int ReduceLrPatience { get; init; } = 3;
    public double MinLearningRate { get; init; } = 1e-6;

    /// <summary>Random shifts/rotations/zooms/flips applied to each training batch; null = none.</summary>
    public OnlineAugmentation? Augmentation { get; init; }
    /// <summary>Weight the training loss by N / (C * count_c) per class, from the training labels. Validation loss stays unweighted.</summary>
    public bool ClassWeightedLoss { get; init; }
    /// <summary>Compute the training pixels' mean/std and store them in the model (<see cref="Models.FerModel.SetInputNormalization"/>).</summary>
    public bool NormalizeInput { get; init; } = true;
    /// <summary>Seeds batch order, augmentation and dropout; same seed, same data, same model -> same numbers.</summary>
    public long Seed { get; init; }
    /// <summary>When set: a checkpoint is written after every epoch, and Fit resumes from the one found there.</summary>
    public string? CheckpointDir { get; init; }
    /// <summary>How many training batches the CPU prepares ahead of the model.</summary>
    public int PrefetchBatches { get; init; } = 3;

    public void Validate()
    {
        if (Epochs < 1) throw new ArgumentOutOfRangeException(nameof(Epochs), Epochs, "must be at least 1");
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "must be at least 1");
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate))
            throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "must be positive and finite");
        if (!(WeightDecay >= 0)) throw new ArgumentOutOfRangeException(nameof(WeightDecay), WeightDecay, "must be >= 0");
        if (EarlyStoppingPatience is < 1) throw new ArgumentOutOfRangeException(nameof(EarlyStoppingPatience), EarlyStoppingPatience, "must be at least 1");
        if (ReduceLrFactor is { } f && !(f > 0 && f < 1)) throw new ArgumentOutOfRangeException(nameof(ReduceLrFactor), f, "must be in (0, 1)");
        if (ReduceLrPatience < 1) throw new ArgumentOutOfRangeException(nameof(ReduceLrPatience), ReduceLrPatience, "must be at least 1");
        if (!(MinLearningRate >= 0)) throw new ArgumentOutOfRangeException(nameof(MinLearningRate), MinLearningRate, "must be >= 0");
        if (PrefetchBatches < 1) throw new ArgumentOutOfRangeException(nameof(PrefetchBatches), PrefetchBatches, "must be at least 1");
        if (!(Momentum >= 0 && Momentum < 1)) throw new ArgumentOutOfRangeException(nameof(Momentum), Momentum, "must be in [0, 1)");
        if (Nesterov && (Optimizer != OptimizerKind.Sgd || Momentum == 0))
            throw new ArgumentException("Nesterov momentum needs the SGD optimizer and a momentum above 0", nameof(Nesterov));
        if (!(LabelSmoothing >= 0 && LabelSmoothing < 1)) throw new ArgumentOutOfRangeException(nameof(LabelSmoothing), LabelSmoothing, "must be in [0, 1)");
        if (Schedule != LrSchedule.Constant && ReduceLrFactor is not null)
            throw new ArgumentException($"the {Schedule} schedule sets the rate at every step; a plateau reduction (ReduceLrFactor) needs the constant schedule", nameof(Schedule));
        Augmentation?.Validate();
    }
}
