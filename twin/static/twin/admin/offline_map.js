// SPDX-License-Identifier: AGPL-3.0-or-later
// Offline base layer for GeoDjango's MapWidget: ward and province outlines
// fetched as GeoJSON from our own server. No tiles, no CDN.
/* global ol */
'use strict';
(function () {
    const wardStroke = new ol.style.Stroke({color: 'rgba(60, 90, 120, 0.7)', width: 1});
    const provinceStroke = new ol.style.Stroke({color: 'rgba(30, 45, 70, 0.9)', width: 2.5});
    const fill = new ol.style.Fill({color: 'rgba(255, 255, 255, 0.35)'});
    const labelFill = new ol.style.Fill({color: '#1e2d46'});
    const labelHalo = new ol.style.Stroke({color: 'rgba(255, 255, 255, 0.9)', width: 3});

    function style(feature, resolution) {
        const isProvince = feature.get('level') === 1;
        const styles = [new ol.style.Style({stroke: isProvince ? provinceStroke : wardStroke,
                                            fill: isProvince ? undefined : fill, zIndex: isProvince ? 2 : 1})];
        // Ward names once zoomed in enough to read them (metres per pixel in EPSG:3857).
        if (!isProvince && resolution < 40) {
            styles.push(new ol.style.Style({text: new ol.style.Text({
                text: feature.get('name') || '', font: '12px sans-serif', fill: labelFill, stroke: labelHalo,
                overflow: false})}));
        }
        return styles;
    }

    function baseLayer(url, attribution) {
        return new ol.layer.Vector({
            source: new ol.source.Vector({
                url: url,
                format: new ol.format.GeoJSON(),
                attributions: attribution,
                attributionsCollapsible: false
            }),
            style: style
        });
    }

    // Fit an empty map to the outlines once loaded, and flag readiness on the
    // map element (data-rendered, data-basemap-features) for tests and scripts.
    function attach(widget) {
        const map = widget.map;
        const source = widget.options.base_layer.getSource();
        const element = document.getElementById(widget.options.map_id);
        const textarea = document.getElementById(widget.options.id);
        // The data attribution stays visible (licence terms), not folded behind an "i" button.
        map.getControls().getArray().filter((c) => c instanceof ol.control.Attribution)
            .forEach((c) => map.removeControl(c));
        map.addControl(new ol.control.Attribution({collapsible: false}));
        // GeoDjango fits a small geometry down to 1 m/pixel; keep some surroundings in view.
        if (textarea.value && map.getView().getZoom() > 17) {
            map.getView().setZoom(17);
        }
        source.on('featuresloadend', function () {
            element.dataset.basemapFeatures = String(source.getFeatures().length);
            if (!textarea.value && source.getFeatures().length) {
                map.getView().fit(source.getExtent(), {padding: [10, 10, 10, 10]});
            }
        });
        source.on('featuresloaderror', function () {
            element.dataset.basemapFeatures = 'error';
            console.warn('CityTwin: could not load the admin base map from ' + source.getUrl());
        });
        map.on('rendercomplete', function () {
            element.dataset.rendered = '1';
        });
        return widget;
    }

    window.twinOfflineMap = {baseLayer: baseLayer, attach: attach};
})();
