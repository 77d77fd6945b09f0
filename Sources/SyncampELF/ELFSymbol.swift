/// A function symbol read from an ELF symbol table.
public struct ELFSymbol: Sendable, Equatable {
    /// The symbol's name as stored in the string table (no `@VERSION` suffix).
    public var name: String
    /// The symbol's virtual address (`st_value`).
    public var address: UInt64
    /// The symbol's size in bytes (`st_size`).
    public var size: UInt64
    /// Whether the binding is `STB_GLOBAL` or `STB_WEAK` (false for `STB_LOCAL`).
    public var isGlobal: Bool
    /// The symbol table the symbol came from.
    public var table: Table

    /// The ELF symbol table a symbol was read from.
    public enum Table: String, Sendable {
        case symtab, dynsym
        /// Not read from a table: a file offset the user gave (`collector --offset`).
        case given
        /// A USDT probe site from `.note.stapsdt` (name "provider:event").
        case usdt
    }

    /// Creates a symbol from its fields.
    public init(name: String, address: UInt64, size: UInt64, isGlobal: Bool, table: Table) {
        self.name = name
        self.address = address
        self.size = size
        self.isGlobal = isGlobal
        self.table = table
    }
}
