using Fer.Core.Data;
using Fer.Core.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Ensemble;

/// <summary>
/// Test-time augmentation: what a prediction averages the softmax over. None: the image. Flip: the image and its
/// mirror. TenCrop: torchvision's TenCrop for a model that sees a centre crop (<see cref="FerModel.CropMargin"/>): the
/// centre and the four corner crops, each also mirrored; a model that sees the whole image has no crops and gets Flip.
/// </summary>
public enum TestTimeAugmentation { None, Flip, TenCrop }

/// <summary>Class probabilities of a trained model for a face set, batched and without gradients.</summary>
public static class Predictor
{
    /// <summary>
    /// Probabilities [N*C] row-major, each row the mean softmax over the views <paramref name="tta"/> names. The model
    /// runs in eval mode; its mode is restored.
    /// <paramref name="imagesDone"/> is told the number of images predicted so far after each batch.
    /// </summary>
    public static float[] PredictProbabilities(FerModel model, FaceSet faces, Device device, TestTimeAugmentation tta = TestTimeAugmentation.Flip, int batchSize = 256,
        CancellationToken ct = default, IProgress<int>? imagesDone = null)
    {
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize));
        int c = model.NumClasses;
        var result = new float[(long)faces.Count * c];
        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var _ = torch.no_grad();
            // One kind of kernels for every batch, whatever else the process computes meanwhile (see TorchRuntime).
            using var kernels = TorchRuntime.CpuConvolutions(ConvolutionKernels.Default);
            for (int start = 0; start < faces.Count; start += batchSize)
            {
                ct.ThrowIfCancellationRequested();
                using var scope = torch.NewDisposeScope();
                int n = Math.Min(batchSize, faces.Count - start);
                var p = Softmax(model, faces.ImagesTensor(device, start, n), tta);
                p.to(torch.CPU).data<float>().CopyTo(result.AsSpan(start * c, n * c));
                imagesDone?.Report(start + n);
            }
        }
        finally
        {
            model.train(wasTraining);
        }
        return result;
    }

    /// <summary>
    /// Class probabilities [N, C] of images [N, 1, S, S] on 0..1, the mean softmax over the views of
    /// <paramref name="tta"/>. The one place this is computed, for the predict stage and for photos alike, so a photo
    /// crop gets the run's own computation (equal up to the last bits oneDNN's batch-size-dependent kernels may change).
    /// Callers decide on no_grad and eval mode.
    /// </summary>
    public static Tensor Softmax(FerModel model, Tensor images, TestTimeAugmentation tta)
    {
        int margin = model.CropMargin;
        if (tta == TestTimeAugmentation.TenCrop && margin == 0) tta = TestTimeAugmentation.Flip;
        switch (tta)
        {
            case TestTimeAugmentation.None:
                return model.call(images).softmax(1);
            case TestTimeAugmentation.Flip:
                return model.call(images).softmax(1).add(model.call(images.flip(3)).softmax(1)).div(2);
            default:
                // The model crops its input's centre; rolling the image by the margin puts a corner crop there (what
                // wraps round lands in the margin the model cuts away). One view at a time: ten at once would hold ten
                // batches' activations.
                Tensor? sum = null;
                foreach (var (dy, dx) in TenCropShifts(margin))
                {
                    using var view = dy == 0 && dx == 0 ? images.alias() : images.roll([dy, dx], [2, 3]);
                    using var mirror = view.flip(3);
                    var p = model.call(view).softmax(1).add_(model.call(mirror).softmax(1));
                    sum = sum is null ? p : sum.add_(p);
                }
                return sum!.div_(10);
        }
    }

    /// <summary>How many images one prediction of <paramref name="model"/> averages under <paramref name="tta"/>.</summary>
    public static int Views(FerModel model, TestTimeAugmentation tta) => tta switch
    {
        TestTimeAugmentation.None => 1,
        TestTimeAugmentation.TenCrop when model.CropMargin > 0 => 10,
        _ => 2,
    };

    /// <summary>The rolls that bring the centre and the four corner crops of a model with this margin into its centre.</summary>
    public static IReadOnlyList<(long Dy, long Dx)> TenCropShifts(int margin) =>
        [(0, 0), (margin, margin), (margin, -margin), (-margin, margin), (-margin, -margin)];
}
