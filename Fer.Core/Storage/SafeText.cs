using System.Text;

namespace Fer.Core.Storage;

/// <summary>
/// Text from data, file names or the artifacts folder made safe where it goes: a CSV cell that a spreadsheet would not run
/// as a formula, and a terminal line that control characters and escape sequences cannot clear, retitle or split.
/// </summary>
public static class SafeText
{
    /// <summary>
    /// One CSV field: a text cell beginning with = + - @ (or a tab or carriage return) gets a leading apostrophe, so a
    /// spreadsheet shows it instead of evaluating it (OWASP's advice on CSV injection); then quoted as RFC 4180 asks when
    /// it holds a comma, quote or line break. Only for text cells: numbers are written as they are.
    /// </summary>
    public static string CsvField(string text)
    {
        if (text.Length > 0 && text[0] is '=' or '+' or '-' or '@' or '\t' or '\r') text = "'" + text;
        return text.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + text.Replace("\"", "\"\"") + "\"" : text;
    }

    /// <summary>
    /// Text for a terminal: every control character (C0 including ESC and line breaks, DEL, C1) as a visible escape
    /// (\n, \t, \x1b, \u0085), so what a file or folder name holds reaches the screen as characters, never as commands.
    /// </summary>
    public static string Terminal(string text)
    {
        int first = text.AsSpan().IndexOfAnyInRange('\0', '\x1f');
        if (first < 0 && !text.Any(IsOtherControl)) return text;
        var sb = new StringBuilder(text.Length + 8);
        foreach (var c in text)
        {
            if (c == '\n') sb.Append("\\n");
            else if (c == '\r') sb.Append("\\r");
            else if (c == '\t') sb.Append("\\t");
            else if (c < 0x20 || c == 0x7f) sb.Append("\\x").Append(((int)c).ToString("x2"));
            else if (IsOtherControl(c)) sb.Append("\\u").Append(((int)c).ToString("x4"));
            else sb.Append(c);
        }
        return sb.ToString();
    }

    private static bool IsOtherControl(char c) => c == 0x7f || (c >= 0x80 && c <= 0x9f);
}
