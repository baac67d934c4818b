using Fer.Core.Data;
using Fer.Core.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Ensemble;

/// <summary>Class probabilities of a trained model for a face set, batched and without gradients.</summary>
public static class Predictor
{
    /// <summary>
    /// Probabilities [N*C] row-major. With <paramref name="flipTta"/> each row is the mean of the softmax of the
    /// image and of its horizontal mirror (test-time flip). The model runs in eval mode; its mode is restored.
    /// <paramref name="imagesDone"/> is told the number of images predicted so far after each batch.
    /// </summary>
    public static float[] PredictProbabilities(FerModel model, FaceSet faces, Device device, bool flipTta = true, int batchSize = 256,
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
                var p = Softmax(model, faces.ImagesTensor(device, start, n), flipTta);
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
    /// Class probabilities [N, C] of images [N, 1, S, S] on 0..1, with test-time flip the mean of the image's and its
    /// mirror's softmax. The one place this is computed, for the predict stage and for photos alike, so a photo crop
    /// gets the run's own computation (equal up to the last bits oneDNN's batch-size-dependent kernels may change).
    /// Callers decide on no_grad and eval mode.
    /// </summary>
    public static Tensor Softmax(FerModel model, Tensor images, bool flipTta)
    {
        var p = model.call(images).softmax(1);
        return flipTta ? p.add(model.call(images.flip(3)).softmax(1)).div(2) : p;
    }
}
