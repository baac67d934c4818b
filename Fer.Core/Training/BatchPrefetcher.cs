using System.Runtime.InteropServices;
using System.Threading.Tasks.Dataflow;
using Fer.Core.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Training;

/// <summary>A training batch on the CPU (pinned when the model is on CUDA). The receiver owns and disposes it.</summary>
internal sealed class TrainingBatch(int epoch, int index, Tensor images, Tensor labels, int count) : IDisposable
{
    public int Epoch { get; } = epoch;
    public int Index { get; } = index;
    public Tensor Images { get; } = images;
    public Tensor Labels { get; } = labels;
    public int Count { get; } = count;

    public void Dispose()
    {
        Images.Dispose();
        Labels.Dispose();
    }
}

/// <summary>
/// Prepares the training batches of epochs [firstEpoch, lastEpoch] on a background thread, in order, into a bounded
/// dataflow buffer, so batch assembly overlaps the model's work. Batch order is the permutation for (seed, epoch).
/// (Augmentation happens in the training step, on the model's device: see Trainer.) Tensors are created outside any dispose scope
/// (scopes are per thread) and ownership passes to whoever receives them; those never received are disposed here.
/// </summary>
internal sealed class BatchPrefetcher : IDisposable
{
    private readonly FaceSet _set;
    private readonly int _batchSize;
    private readonly long _seed;
    private readonly bool _pin;
    private readonly BufferBlock<TrainingBatch> _buffer;
    private readonly CancellationTokenSource _stop;
    private readonly Task _producer;

    public BatchPrefetcher(FaceSet set, int batchSize, long seed, bool pinMemory,
        int firstEpoch, int lastEpoch, int capacity, CancellationToken ct)
    {
        _set = set; _batchSize = batchSize; _seed = seed; _pin = pinMemory;
        _buffer = new BufferBlock<TrainingBatch>(new DataflowBlockOptions { BoundedCapacity = capacity });
        _stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        // One dedicated thread rather than thread-pool continuations: native allocations then all come from one
        // thread (one malloc arena), which keeps resident memory flat from epoch to epoch.
        _producer = Task.Factory.StartNew(() => Produce(firstEpoch, lastEpoch, _stop.Token), CancellationToken.None,
            TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    public int BatchesPerEpoch => BatchCount(_set.Count, _batchSize);

    public static int BatchCount(int count, int batchSize) => (count + batchSize - 1) / batchSize;

    /// <summary>The order in which epoch <paramref name="epoch"/> visits the rows.</summary>
    public static int[] EpochOrder(long seed, int epoch, int count) =>
        new KeyedRandom(seed, 0x53_48_55_46 /* "SHUF" */, epoch).Permutation(count);

    private void Produce(int firstEpoch, int lastEpoch, CancellationToken ct)
    {
        try
        {
            for (int epoch = firstEpoch; epoch <= lastEpoch; epoch++)
            {
                var order = EpochOrder(_seed, epoch, _set.Count);
                for (int b = 0, start = 0; start < order.Length; b++, start += _batchSize)
                {
                    ct.ThrowIfCancellationRequested();
                    int n = Math.Min(_batchSize, order.Length - start);
                    var batch = MakeBatch(epoch, b, order.AsSpan(start, n));
                    bool accepted;
                    try { accepted = _buffer.SendAsync(batch, ct).GetAwaiter().GetResult(); } // waits while the buffer is full
                    catch { batch.Dispose(); throw; }
                    if (!accepted) { batch.Dispose(); return; }
                }
            }
            _buffer.Complete();
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Stopped on purpose: complete normally so the batches still buffered can be received and disposed.
            _buffer.Complete();
        }
        catch (Exception e)
        {
            // Faulting drops buffered items, so dispose them first; the receiver then sees this error.
            if (_buffer.TryReceiveAll(out var left))
                foreach (var batch in left) batch.Dispose();
            ((IDataflowBlock)_buffer).Fault(e);
        }
    }

    private TrainingBatch MakeBatch(int epoch, int index, ReadOnlySpan<int> rows)
    {
        int n = rows.Length, p = _set.PixelsPerImage, side = _set.Side;
        using var scope = NewDisposeScope();
        // Fill the tensors' own CPU storage directly: no managed array per batch.
        var images = empty([n, 1, side, side], ScalarType.Float32);
        var labels = empty([n], ScalarType.Int64);
        var pixelsOut = MemoryMarshal.Cast<byte, float>(images.bytes);
        var labelsOut = MemoryMarshal.Cast<byte, long>(labels.bytes);
        for (int k = 0; k < n; k++)
        {
            int row = rows[k];
            var src = _set.Pixels.AsSpan(row * p, p);
            var dst = pixelsOut.Slice(k * p, p);
            for (int i = 0; i < p; i++) dst[i] = src[i] * (1f / 255f);
            labelsOut[k] = _set.Labels[row];
        }
        if (_pin)
        {
            images = images.pin_memory();
            labels = labels.pin_memory();
        }
        scope.Detach(images, labels);
        return new TrainingBatch(epoch, index, images, labels, n);
    }

    /// <summary>The next batch in order; blocks until the producer has it.</summary>
    public TrainingBatch Next(CancellationToken ct)
    {
        if (_buffer.OutputAvailableAsync(ct).GetAwaiter().GetResult())
            return _buffer.Receive(ct);
        // The buffer completed: either the producer failed (rethrow its error) or the caller asked past the end.
        _buffer.Completion.GetAwaiter().GetResult();
        throw new InvalidOperationException("the batch producer has no more batches");
    }

    public void Dispose()
    {
        _stop.Cancel();
        _producer.GetAwaiter().GetResult(); // never throws: errors go into the buffer
        _buffer.Complete();
        if (_buffer.TryReceiveAll(out var left))
            foreach (var batch in left) batch.Dispose();
        _stop.Dispose();
    }
}
