using System.Text;
using Fer.Core.Storage;

namespace Fer.Flow.Cli;

/// <summary>
/// fer's standard error: every line it writes reaches the terminal with its control characters escaped
/// (<see cref="SafeText.Terminal"/>), so an id, a path or a folder name holding escape sequences or line breaks can
/// neither drive the terminal nor split a one-line error. Each write may end in one line break; any other is escaped.
/// </summary>
public sealed class SafeErrorWriter(TextWriter inner) : TextWriter
{
    public override Encoding Encoding => inner.Encoding;

    public override void Write(char value)
    {
        if (value == '\n') inner.Write(value);
        else inner.Write(SafeText.Terminal(value.ToString()));
    }

    public override void Write(string? value)
    {
        if (string.IsNullOrEmpty(value)) return;
        bool endsLine = value.EndsWith('\n');
        var body = endsLine ? value[..^(value.EndsWith("\r\n", StringComparison.Ordinal) ? 2 : 1)] : value;
        inner.Write(SafeText.Terminal(body));
        if (endsLine) inner.Write('\n');
    }

    public override void Write(char[] buffer, int index, int count) => Write(new string(buffer, index, count));

    public override void WriteLine(string? value)
    {
        inner.Write(SafeText.Terminal(value ?? ""));
        inner.Write('\n');
    }

    public override void WriteLine() => inner.Write('\n');

    public override void Flush() => inner.Flush();
}
