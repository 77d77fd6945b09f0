import CElfutils
import Foundation
import SyncampProbes

/// The layouts syncamp's probes need, read from a QEMU build's DWARF with elfutils' libdw:
/// each probed function's parameter names in order, and the byte offset of each field
/// that `QemuABI.Offsets` lists.
///
/// Reads the top-level entries of every compile unit (functions and struct types are
/// there), following anonymous members (QEMUIOVector's union) and typedefs of anonymous
/// structs. A static function fully inlined keeps its abstract entry, with its parameters.
public struct DWARFLayout: Sendable, Equatable {
    /// Parameter names per function, in order.
    public var parameters: [String: [String]] = [:]
    /// Field offsets per "Struct.field".
    public var fields: [String: Int32] = [:]

    /// Why a file's DWARF could not be read.
    public struct Failure: Error, CustomStringConvertible {
        public var path: String
        public var reason: String
        public var description: String { "cannot read the DWARF of \(path): \(reason)" }
    }

    /// Reads the layouts of `functions` and of the fields `wanted` ("Struct.field") from the
    /// DWARF of the ELF file at `path` (a binary built with -g, or its separate debug file).
    /// - Returns: nil when the file has no DWARF at all.
    /// - Throws: `Failure` when the file cannot be opened.
    public static func read(path: String, functions: Set<String>, fields wanted: Set<String>) throws -> DWARFLayout? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        guard let dw = dwarf_begin(fd, DWARF_C_READ) else { return nil }
        defer { dwarf_end(dw) }
        var layout = DWARFLayout()
        let structs = Set(wanted.compactMap { $0.split(separator: ".").first.map(String.init) })
        var seenStructs: Set<String> = []
        var offset: Dwarf_Off = 0, next: Dwarf_Off = 0
        var headerSize = 0
        while dwarf_nextcu(dw, offset, &next, &headerSize, nil, nil, nil) == 0 {
            defer { offset = next }
            var cu = Dwarf_Die()
            guard dwarf_offdie(dw, offset + Dwarf_Off(headerSize), &cu) != nil else { continue }
            var die = Dwarf_Die()
            guard dwarf_child(&cu, &die) == 0 else { continue }
            repeat {
                let tag = Int(dwarf_tag(&die))
                if tag == DW_TAG_subprogram, let name = name(&die), functions.contains(name),
                   layout.parameters[name] == nil, !isDeclaration(&die) {
                    layout.parameters[name] = parameterNames(&die)
                } else if tag == DW_TAG_structure_type || tag == DW_TAG_typedef,
                          let name = name(&die), structs.contains(name), !seenStructs.contains(name) {
                    var type = die
                    if tag == DW_TAG_typedef {
                        guard resolveType(&die, into: &type), Int(dwarf_tag(&type)) == DW_TAG_structure_type else { continue }
                    }
                    guard !isDeclaration(&type), dwarf_haschildren(&type) != 0 else { continue }
                    seenStructs.insert(name)
                    collectFields(of: &type, base: 0) { field, off in
                        let key = "\(name).\(field)"
                        if wanted.contains(key), layout.fields[key] == nil { layout.fields[key] = off }
                    }
                }
            } while nextSibling(&die)
        }
        return layout
    }

    /// The QEMU ABI of a build: `base` (the table of its version) with every parameter list and
    /// field offset the DWARF has put in its place; `source` becomes `.dwarf(path)`.
    public static func abi(path: String, base: QemuABI) throws -> (abi: QemuABI, missing: [String])? {
        let fieldNames = Set(base.offsets.fields.map { "\($0.structName).\($0.field)" })
        guard let layout = try read(path: path, functions: Set(base.parameters.keys), fields: fieldNames),
              !layout.parameters.isEmpty || !layout.fields.isEmpty else { return nil }
        var abi = base
        abi.source = .dwarf(path)
        var missing: [String] = []
        for f in base.parameters.keys.sorted() {
            if let p = layout.parameters[f] { abi.parameters[f] = p } else { missing.append(f) }
        }
        for f in base.offsets.fields {
            let key = "\(f.structName).\(f.field)"
            if let off = layout.fields[key] { abi.offsets.set(f.structName, f.field, off) } else { missing.append(key) }
        }
        return (abi, missing)
    }

    // MARK: libdw helpers

    /// Moves `die` to its next sibling; false at the last one.
    private static func nextSibling(_ die: inout Dwarf_Die) -> Bool {
        var current = die
        return dwarf_siblingof(&current, &die) == 0
    }

    private static func name(_ die: inout Dwarf_Die) -> String? {
        var attr = Dwarf_Attribute()
        guard dwarf_attr_integrate(&die, UInt32(DW_AT_name), &attr) != nil, let s = dwarf_formstring(&attr) else { return nil }
        return String(cString: s)
    }

    private static func isDeclaration(_ die: inout Dwarf_Die) -> Bool {
        var attr = Dwarf_Attribute()
        var flag = false
        guard dwarf_attr(&die, UInt32(DW_AT_declaration), &attr) != nil else { return false }
        return dwarf_formflag(&attr, &flag) == 0 && flag
    }

    private static func parameterNames(_ fn: inout Dwarf_Die) -> [String] {
        var names: [String] = []
        var child = Dwarf_Die()
        guard dwarf_child(&fn, &child) == 0 else { return names }
        repeat {
            if Int(dwarf_tag(&child)) == DW_TAG_formal_parameter {
                names.append(name(&child) ?? "?")
            }
        } while nextSibling(&child)
        return names
    }

    /// Follows DW_AT_type through typedefs and qualifiers to the underlying type.
    private static func resolveType(_ die: inout Dwarf_Die, into out: inout Dwarf_Die) -> Bool {
        var attr = Dwarf_Attribute()
        guard dwarf_attr_integrate(&die, UInt32(DW_AT_type), &attr) != nil,
              dwarf_formref_die(&attr, &out) != nil else { return false }
        var from = out
        var peeled = Dwarf_Die()
        if dwarf_peel_type(&from, &peeled) == 0 { out = peeled }
        return true
    }

    /// Calls `visit` with every named field of a struct or union and its offset from the
    /// outermost struct, descending into anonymous struct and union members.
    private static func collectFields(of type: inout Dwarf_Die, base: Int32, _ visit: (String, Int32) -> Void) {
        var member = Dwarf_Die()
        guard dwarf_child(&type, &member) == 0 else { return }
        repeat {
            guard Int(dwarf_tag(&member)) == DW_TAG_member else { continue }
            var attr = Dwarf_Attribute()
            var location: Dwarf_Word = 0
            if dwarf_attr(&member, UInt32(DW_AT_data_member_location), &attr) != nil {
                _ = dwarf_formudata(&attr, &location)
            }
            let off = base + Int32(truncatingIfNeeded: location)
            if let n = name(&member) {
                visit(n, off)
            } else {
                var inner = Dwarf_Die()
                if resolveType(&member, into: &inner) { collectFields(of: &inner, base: off, visit) }
            }
        } while nextSibling(&member)
    }
}
