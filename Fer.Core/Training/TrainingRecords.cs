namespace Fer.Core.Training;

/// <summary>One finished epoch. Loss/Accuracy are over the epoch's training batches (weighted loss when class weights
/// are on); ValidLoss/ValidAccuracy over the validation set in eval mode (NaN when there is no validation set).
/// LearningRate is the rate used during the epoch; Seconds covers training and validation; ImagesPerSecond is
/// training images over training time.</summary>
public sealed record EpochRecord(int Epoch, double Loss, double Accuracy, double ValidLoss, double ValidAccuracy,
    double LearningRate, double Seconds, double ImagesPerSecond);

/// <summary>Progress inside an epoch. Loss and Accuracy are running means over the epoch's batches so far.</summary>
public sealed record TrainProgress(string Model, int Epoch, int Epochs, int Batch, int Batches, double Loss,
    double Accuracy, double ImagesPerSecond, TimeSpan Eta);

public sealed class TrainResult
{
    /// <summary>All epochs trained so far, including those before a resume.</summary>
    public required IReadOnlyList<EpochRecord> History { get; init; }
    /// <summary>Checkpoints found damaged when Fit started (path, problem): set aside, training went on from an older one or afresh.</summary>
    public IReadOnlyList<(string Path, string Problem)> DamagedCheckpoints { get; init; } = [];
    /// <summary>1-based epoch with the best monitored value (see <see cref="TrainOptions.Monitor"/>).</summary>
    public required int BestEpoch { get; init; }
    public required double BestValidAccuracy { get; init; }
    public required double BestValidLoss { get; init; }
    public required int EpochsRun { get; init; }
    public required bool StoppedEarly { get; init; }
    /// <summary>Sum of the epochs' seconds (all epochs of <see cref="History"/>).</summary>
    public required double Seconds { get; init; }
    /// <summary>Training images per second of training time over all epochs of <see cref="History"/>.</summary>
    public required double ImagesPerSecond { get; init; }
    /// <summary>The last finished epoch found in the checkpoint when Fit started; 0 = fresh start.</summary>
    public required int ResumedFromEpoch { get; init; }
}

/// <summary>The training loss became NaN or infinite.</summary>
public sealed class TrainingDivergedException(string modelName, int epoch, double loss)
    : Exception($"model {modelName} diverged at epoch {epoch}: loss {(double.IsNaN(loss) ? "NaN" : loss > 0 ? "+inf" : "-inf")}")
{
    public string ModelName { get; } = modelName;
    public int Epoch { get; } = epoch;
    public double Loss { get; } = loss;
}
